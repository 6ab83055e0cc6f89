//! `logs ID [-f] [--attempt N] [--stderr] [--since D]`: the driver's logs from CloudWatch Logs,
//! in the stream of the right attempt (`shared::outcome::job_run`'s names, the ones monitor reads).
//! `-f` follows live, moves to the next attempt's stream when the run retries (a banner on
//! stderr), drains the stream once the job is final and exits with the outcome's code. When the
//! stream is gone, the tail monitor stored on the row (`driverLogs`) is printed instead.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use shared::outcome::job_run::{driver_log_prefix, driver_log_streams};
use shared::ports::JobRunReader;

use crate::cli::LogsArgs;
use crate::context::{Aws, Context};
use crate::exit::{CliError, CommandResult, Exit};
use crate::log_stream::{LogStream, Read};
use crate::output::{hint, note, paint, Printer, BOLD};
use crate::row::JobRow;

/// How often `-f` reads the stream.
const FOLLOW_POLL: Duration = Duration::from_secs(2);
/// How often `-f` reads the job (the row, and GetJobRun for the attempt).
const JOB_POLL: Duration = Duration::from_secs(5);
/// How long `-f` keeps reading after the job is final: the last lines reach CloudWatch late.
const DRAIN: Duration = Duration::from_secs(4);

/// One log line as `json`/`ndjson` prints it.
#[derive(Debug, Serialize)]
struct LogLine<'a> {
    attempt: i32,
    stream: &'a str,
    message: &'a str,
}

/// Runs `logs`.
pub async fn run(ctx: &Context, args: LogsArgs) -> CommandResult {
    if args.attempt.is_some_and(|a| a < 1) {
        return Err(CliError::Usage("--attempt counts from 1".into()));
    }
    let aws = ctx.aws().await?;
    let mut row = aws.job(&args.id).await?;
    let which = if args.stderr { "stderr" } else { "stdout" };
    let start_time = args.since.map(|d| (Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)).timestamp_millis());

    if args.follow {
        // A job may not have its run yet: wait for submit to record it.
        while row.run().is_none() {
            if let Some(outcome) = row.outcome() {
                fallback(&ctx.printer, &row, which)?;
                return Ok(outcome);
            }
            tokio::time::sleep(JOB_POLL).await;
            row = aws.job(&args.id).await?;
        }
    }
    let Some((app, run)) = row.run().map(|(a, r)| (a.to_string(), r.to_string())) else {
        fallback(&ctx.printer, &row, which)?;
        return Ok(Exit::Ok);
    };
    let mut attempt = match args.attempt {
        Some(n) => n,
        None => current_attempt(&aws, &row).await?,
    };
    let prefix = driver_log_prefix(&row.id, &app, &run);
    let group = row.driver_logs.as_ref().and_then(|d| d.log_group_name.clone()).unwrap_or_else(|| aws.log_group.clone());
    let mut stream = open(&aws, &group, &prefix, attempt, which, start_time).await?;

    if !args.follow {
        return match stream {
            Some((mut s, first)) => {
                print_lines(&ctx.printer, attempt, which, &first);
                // `open` read to the stream's end; a last look for what arrived meanwhile.
                if let Read::Events(more) = s.read_new(&aws.logs).await? {
                    print_lines(&ctx.printer, attempt, which, &more);
                }
                Ok(Exit::Ok)
            }
            None => {
                fallback(&ctx.printer, &row, which)?;
                Ok(Exit::Ok)
            }
        };
    }

    // Following.
    if let Some((_, first)) = &stream {
        print_lines(&ctx.printer, attempt, which, first);
    }
    let mut last_job_read = Instant::now();
    let mut final_since: Option<Instant> = None;
    loop {
        if let Some((s, _)) = stream.as_mut() {
            if let Read::Events(lines) = s.read_new(&aws.logs).await? {
                print_lines(&ctx.printer, attempt, which, &lines);
            }
        } else {
            stream = open(&aws, &group, &prefix, attempt, which, start_time).await?;
            if let Some((_, first)) = &stream {
                print_lines(&ctx.printer, attempt, which, first);
            }
        }
        if let Some(since) = final_since {
            if since.elapsed() >= DRAIN {
                if stream.is_none() {
                    fallback(&ctx.printer, &row, which)?;
                }
                return Ok(row.outcome().unwrap_or(Exit::Ok));
            }
        } else if last_job_read.elapsed() >= JOB_POLL {
            last_job_read = Instant::now();
            row = aws.job(&args.id).await?;
            if row.is_final() {
                final_since = Some(Instant::now());
            } else if args.attempt.is_none() {
                let now = current_attempt(&aws, &row).await?;
                if now > attempt {
                    // Drain the attempt that ended, then move to the next one's stream.
                    if let Some((s, _)) = stream.as_mut() {
                        if let Read::Events(lines) = s.read_new(&aws.logs).await? {
                            print_lines(&ctx.printer, attempt, which, &lines);
                        }
                    }
                    note(paint(BOLD, format!("── attempt {now} of {} (the run was retried) ──", row.max_attempts())));
                    attempt = now;
                    stream = open(&aws, &group, &prefix, attempt, which, start_time).await?;
                    if let Some((_, first)) = &stream {
                        print_lines(&ctx.printer, attempt, which, first);
                    }
                }
            }
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// The run's latest attempt: GetJobRun's while it goes, the row's once it is final.
async fn current_attempt(aws: &Aws, row: &JobRow) -> Result<i32, CliError> {
    match row.run() {
        Some((app, run)) if !row.is_final() => Ok(aws.runs.get_job_run(app, run).await?.attempt.unwrap_or(1).max(row.latest_attempt())),
        _ => Ok(row.latest_attempt()),
    }
}

/// The attempt's stream, where EMR writes it (and the other layout, as monitor looks), read to
/// its current end; `None` when neither exists (yet).
async fn open(aws: &Aws, group: &str, prefix: &str, attempt: i32, which: &str, start_time: Option<i64>) -> Result<Option<(LogStream, Vec<String>)>, CliError> {
    for name in driver_log_streams(prefix, Some(attempt), which) {
        let mut stream = LogStream::new(group, &name, start_time);
        if let Read::Events(lines) = stream.read_new(&aws.logs).await? {
            return Ok(Some((stream, lines)));
        }
    }
    Ok(None)
}

fn print_lines(printer: &Printer, attempt: i32, which: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    if printer.is_text() {
        printer.text(&lines.join("\n"));
    } else {
        for message in lines {
            printer.json(&LogLine { attempt, stream: which, message });
        }
    }
}

/// The tail monitor stored on the row, when CloudWatch has no stream; an error when there is none.
fn fallback(printer: &Printer, row: &JobRow, which: &str) -> Result<(), CliError> {
    let Some(logs) = &row.driver_logs else {
        return Err(CliError::Client(match row.run() {
            Some(_) => format!("no {which} log stream for job {} yet, and no stored tail on its row", row.id),
            None => format!("job {} has no run (it is {}), so no driver logs", row.id, row.job_status.map(|s| s.as_str()).unwrap_or("?")),
        }));
    };
    let text = if which == "stderr" { &logs.stderr } else { &logs.stdout };
    let attempt = logs.attempt.map(|a| format!(" of attempt {a}")).unwrap_or_default();
    let cut = if logs.truncated { ", its end only" } else { "" };
    hint(format!("the CloudWatch stream is gone: the {which} tail stored on the row{attempt}{cut}"));
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    print_lines(printer, logs.attempt.unwrap_or(1), which, &lines);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, running};

    #[test]
    fn the_stored_tail_stands_in_for_a_gone_stream() {
        let printer = Printer { format: crate::cli::Format::Text };
        assert!(fallback(&printer, &failed_twice(), "stderr").is_ok());
        let err = fallback(&printer, &running(), "stdout").unwrap_err();
        assert_eq!(err.to_string(), "no stdout log stream for job job-run yet, and no stored tail on its row");
        assert_eq!(err.exit(), Exit::Client);
    }
}
