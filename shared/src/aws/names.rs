//! AWS's naming rules for the resources this service is configured with or told about (regions,
//! tables, buckets, log groups, IAM role ARNs, EMR Serverless application names), as pure checks:
//! [`crate::config`] validates its settings with them, [`crate::outcome::cost`] its price table's
//! regions, [`crate::launch::plan`] a job's own application name and role.

/// `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let name = resource.strip_prefix("role/").unwrap_or("");
    partition.starts_with("aws")
        && partition.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 512
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
}

/// EMR Serverless application names: 1-64 characters of `[A-Za-z0-9._/#-]`.
pub fn is_application_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._/#-".contains(c))
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

pub fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn is_log_group_name(name: &str) -> bool {
    (1..=512).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._/#-".contains(c))
}

pub fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        let name_at_cap = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(512));
        let name_over = format!("{name_at_cap}r");
        let cases = [
            ("arn:aws:iam::123456789012:role/job", true),
            ("arn:aws-cn:iam::123456789012:role/team/a/job", true),
            ("arn:aws-us-gov:iam::123456789012:role/a+=,.@_-b", true),
            (&name_at_cap, true),
            (&name_over, false),
            ("arn:aws:iam::12345678901:role/job", false),
            ("arn:aws:iam::1234567890123:role/job", false),
            ("arn:aws:iam::12345678901x:role/job", false),
            ("arn:aws:iam::123456789012:user/job", false),
            ("arn:aws:iam::123456789012:role/", false),
            ("arn:aws:iam::123456789012:role/a job", false),
            ("arn:aws:iam:us-east-1:123456789012:role/job", false),
            ("arn:aws:sts::123456789012:role/job", false),
            ("arn:AWS:iam::123456789012:role/job", false),
            ("arn:azure:iam::123456789012:role/job", false),
            ("arn:aws:iam::123456789012", false),
            ("aws:iam::123456789012:role/job:x", false),
        ];
        for (arn, valid) in cases {
            assert_eq!(is_role_arn(arn), valid, "{arn}");
        }
    }

    #[test]
    fn application_table_and_log_group_names_at_their_lengths_and_characters() {
        // (name, application, table, log group)
        let cases = [
            ("".to_string(), false, false, false),
            ("ab".to_string(), true, false, true),
            ("abc".to_string(), true, true, true),
            ("x".repeat(64), true, true, true),
            ("x".repeat(65), false, true, true),
            ("x".repeat(255), false, true, true),
            ("x".repeat(256), false, false, true),
            ("x".repeat(512), false, false, true),
            ("x".repeat(513), false, false, false),
            ("team/a#1._-".to_string(), true, false, true),
            ("a_b.c-d".to_string(), true, true, true),
            ("a+b".to_string(), false, false, false),
            ("/aws/emr-serverless".to_string(), true, false, true),
            ("a b c".to_string(), false, false, false),
            ("ab:c".to_string(), false, false, false),
        ];
        for (name, application, table, log_group) in cases {
            assert_eq!((is_application_name(&name), is_table_name(&name), is_log_group_name(&name)), (application, table, log_group), "{name}");
        }
    }

    #[test]
    fn regions() {
        let cases = [
            ("us-east-1", true),
            ("us-gov-west-1", true),
            ("cn-north-1", true),
            ("eu-central-12", true),
            ("us-east", false),
            ("us-east-1a", false),
            ("US-east-1", false),
            ("us--1", false),
            ("us-east-", false),
            ("us_east-1", false),
            ("", false),
        ];
        for (region, valid) in cases {
            assert_eq!(is_region(region), valid, "{region}");
        }
    }

    #[test]
    fn bucket_names() {
        let cases = [
            ("abc".to_string(), true),
            ("ab".to_string(), false),
            ("b".repeat(63), true),
            ("b".repeat(64), false),
            ("my.bucket-2".to_string(), true),
            ("9bucket0".to_string(), true),
            ("Bucket".to_string(), false),
            ("my_bucket".to_string(), false),
            ("-bucket".to_string(), false),
            (".bucket".to_string(), false),
            ("bucket-".to_string(), false),
            ("bucket.".to_string(), false),
            ("my..bucket".to_string(), false),
            ("my bucket".to_string(), false),
        ];
        for (name, valid) in cases {
            assert_eq!(is_bucket_name(&name), valid, "{name}");
        }
    }
}
