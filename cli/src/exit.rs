//! Exit codes, the CLI's documented interface (cli/README.md): what a job's outcome, a timeout
//! and a failed call each exit with, and the CLI's error type.

use shared::error::AwsError;
use shared::job::record::JobStatus;
use shared::outcome::failure::FailureClass;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the job is COMPLETE (or the command did what it was asked).
    Ok,
    /// 1: the job ended in ERROR (for another reason than a timeout).
    Error,
    /// 2: the command line was wrong.
    Usage,
    /// 3: the job was CANCELLED.
    Cancelled,
    /// 4: EMR ended the run for a timeout (its execution timeout, or the application's queue timeout).
    TimedOut,
    /// 5: `--timeout` ran out with the job still going (it is never cancelled).
    StillRunning,
    /// 6: an AWS call or the client failed (no such job, no credentials, access denied, ...).
    Client,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::Cancelled => 3,
            Exit::TimedOut => 4,
            Exit::StillRunning => 5,
            Exit::Client => 6,
        }
    }

    /// The code of a job's outcome; `None` while the job is not final. A timeout is EMR's verdict
    /// (the `failure` class monitor recorded), whatever the logs say.
    pub fn of_outcome(status: Option<JobStatus>, failure_class: Option<FailureClass>) -> Option<Exit> {
        match status? {
            JobStatus::Complete => Some(Exit::Ok),
            JobStatus::Cancelled => Some(Exit::Cancelled),
            JobStatus::Error => match failure_class {
                Some(FailureClass::Timeout | FailureClass::QueueTimeout) => Some(Exit::TimedOut),
                _ => Some(Exit::Error),
            },
            JobStatus::Created | JobStatus::Waiting | JobStatus::Running => None,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value the command line gave that the command cannot use (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something the client or the environment lacks: no such job, no table, an unreadable file (exit 6).
    #[error("{0}")]
    Client(String),
    /// An AWS call failed (exit 6).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl CliError {
    /// The exit this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Client(_) | CliError::Aws(_) => Exit::Client,
        }
    }

    /// What to try next, printed under the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Aws(e) if e.code.as_deref().is_some_and(|c| c.contains("AccessDenied") || c.contains("UnrecognizedClient")) => {
                Some("check the credentials and profile (--profile), and that they carry the operator policy; `modelop-spark doctor` lists what each command needs")
            }
            CliError::Aws(e) if e.message.contains("dispatch failure") || e.message.contains("connection") => {
                Some("is the endpoint reachable? For the local stack use --local; otherwise check --region and --endpoint-url")
            }
            _ => None,
        }
    }
}

/// The result of a command: how the process ends, or why it could not do its work.
pub type CommandResult = Result<Exit, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_codes() {
        use FailureClass::*;
        use JobStatus::*;
        let cases = [
            (Some(Complete), None, Some(0)),
            (Some(Error), None, Some(1)),
            (Some(Error), Some(OutOfMemory), Some(1)),
            (Some(Error), Some(Timeout), Some(4)),
            (Some(Error), Some(QueueTimeout), Some(4)),
            (Some(Cancelled), None, Some(3)),
            // A COMPLETE job is never a timeout, whatever a stale field says.
            (Some(Complete), Some(Timeout), Some(0)),
            (Some(Running), None, None),
            (Some(Waiting), None, None),
            (Some(Created), None, None),
            (None, None, None),
        ];
        for (status, class, code) in cases {
            assert_eq!(Exit::of_outcome(status, class).map(Exit::code), code, "{status:?} {class:?}");
        }
    }

    #[test]
    fn documented_codes() {
        let codes: Vec<u8> = [Exit::Ok, Exit::Error, Exit::Usage, Exit::Cancelled, Exit::TimedOut, Exit::StillRunning, Exit::Client].map(Exit::code).to_vec();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(CliError::Usage("x".into()).exit(), Exit::Usage);
        assert_eq!(CliError::Client("x".into()).exit(), Exit::Client);
    }
}
