//! The OAuth2 client secret, from AWS Secrets Manager (`MODELOP_CLIENT_SECRET_ARN`): the secret's
//! string is the client secret itself, or a JSON object with `client_secret`. Read once per cold
//! start; its value is never logged or put in an error.

use crate::aws::classify;
use crate::error::{AwsError, AwsErrorKind};

/// Reads the secret and returns the client secret in it.
pub async fn client_secret(client: &aws_sdk_secretsmanager::Client, secret_arn: &str) -> Result<String, AwsError> {
    let output = client.get_secret_value().secret_id(secret_arn).send().await.map_err(|e| classify("SecretsManager", "GetSecretValue", e))?;
    let value = output.secret_string().ok_or_else(|| AwsError::new("SecretsManager", "GetSecretValue", AwsErrorKind::Permanent, format!("{secret_arn} has no string value")))?;
    client_secret_of(value).map_err(|reason| AwsError::new("SecretsManager", "GetSecretValue", AwsErrorKind::Permanent, format!("{secret_arn}: {reason}")))
}

/// The client secret in a secret's string: a JSON object's `client_secret`, else the whole string
/// (trimmed). The reason never quotes the value.
pub fn client_secret_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(value).map_err(|_| "the value starts like JSON but is not a JSON object".to_string())?;
        return object
            .get("client_secret")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| "the JSON object has no client_secret string".to_string());
    }
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_the_value_or_its_client_secret() {
        let cases = [
            ("s3cr3t", Ok("s3cr3t")),
            ("  s3cr3t\n", Ok("s3cr3t")),
            (r#"{"client_id": "internal-client", "client_secret": "s3cr3t"}"#, Ok("s3cr3t")),
            (r#"{"client_id": "internal-client"}"#, Err("the JSON object has no client_secret string")),
            (r#"{"client_secret": ""}"#, Err("the JSON object has no client_secret string")),
            ("{not json s3cr3t", Err("the value starts like JSON but is not a JSON object")),
            ("", Err("the value is empty")),
        ];
        for (value, expected) in cases {
            let got = client_secret_of(value);
            assert_eq!(got.as_deref().map_err(String::as_str), expected, "{value}");
            if let Err(reason) = got {
                assert!(!reason.contains("s3cr3t"), "the reason never quotes the secret");
            }
        }
    }
}
