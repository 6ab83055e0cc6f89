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
