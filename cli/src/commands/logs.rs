//! `logs ID [-f] [--attempt N] [--stderr] [--since D]`: the driver's logs from CloudWatch Logs,
//! in the stream of the right attempt (`shared::outcome::job_run`'s names, the ones monitor reads).
//! `-f` follows live, moves to the next attempt's stream when the run retries (a banner on
//! stderr), drains the stream once the job is final and exits with the outcome's code. When the
//! stream is gone, the tail monitor stored on the row (`driverLogs`) is printed instead.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use shared::outcome::job_run::{driver_log_prefix, driver_log_stream, driver_log_streams};
use shared::ports::JobRunReader;

use crate::cli::LogsArgs;
use crate::context::{Aws, Context};
use crate::exit::{CliError, CommandResult, Exit};
use crate::log_stream::{LogStream, Read};
use crate::output::{hint_to, note_to, paint, Printer, BOLD};
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

/// Where `logs` writes: the log lines (data) to `out`, banners and hints to `err`. The process's
/// stdout and stderr, or a test's buffers.
pub struct Streams<'a> {
    pub printer: &'a Printer,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// Which attempt's lines of which stream `logs` reads.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// `stdout` or `stderr`.
    pub which: &'a str,
    /// `--attempt N`: that attempt only; the latest (and, following, each next one) otherwise.
    pub attempt: Option<i32>,
    /// `--since`: only events at or after this instant (epoch milliseconds).
    pub start_time: Option<i64>,
}

impl Selection<'_> {
    /// The driver's stdout of every attempt, from the start: what `submit --follow` follows.
    pub const DRIVER_STDOUT: Selection<'static> = Selection { which: "stdout", attempt: None, start_time: None };
}

/// Runs `logs`.
pub async fn run(ctx: &Context, args: LogsArgs) -> CommandResult {
    if args.attempt.is_some_and(|a| a < 1) {
        return Err(CliError::Usage("--attempt counts from 1".into()));
    }
    let aws = ctx.aws().await?;
    let start_time = args.since.map(|d| (Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)).timestamp_millis());
    let selection = Selection { which: if args.stderr { "stderr" } else { "stdout" }, attempt: args.attempt, start_time };
    let (mut out, mut err) = (anstream::stdout(), anstream::stderr());
    let mut io = Streams { printer: &ctx.printer, out: &mut out, err: &mut err };
    if args.follow {
        return follow(&mut io, &aws, &args.id, selection).await;
    }
    let row = aws.job(&args.id).await?;
    let Some((app, run)) = row.run() else {
        fallback(&mut io, &row, selection.which)?;
        return Ok(Exit::Ok);
    };
    let attempt = match selection.attempt {
        Some(n) => n,
        None => current_attempt(&aws, &row).await?,
    };
    let group = log_group(&aws, &row);
    match open(&aws, &group, &driver_log_prefix(&row.id, app, run), attempt, selection, &[]).await? {
        Some((mut s, first)) => {
            print_lines(&mut io, attempt, selection.which, &first);
            // `open` read to the stream's end; a last look for what arrived meanwhile.
            if let Read::Events(more) = s.read_new(&aws.logs).await? {
                print_lines(&mut io, attempt, selection.which, &more);
            }
        }
        None => fallback(&mut io, &row, selection.which)?,
    }
    Ok(Exit::Ok)
}

/// `logs -f` (and `submit --follow`): follows job `id`'s driver log live, from before its run
/// exists (submit has not launched it yet) to its end, moving to the next attempt's stream when
/// the run retries (a banner on `err`), reads the stream to its end once the job is final, and
/// answers the outcome's code.
pub async fn follow(io: &mut Streams<'_>, aws: &Aws, id: &str, selection: Selection<'_>) -> CommandResult {
    let which = selection.which;
    let mut row = aws.job(id).await?;
    // A job may not have its run yet: wait for submit to record it.
    let (app, run) = loop {
        if let Some((app, run)) = row.run() {
            break (app.to_string(), run.to_string());
        }
        if let Some(outcome) = row.outcome() {
            ended_without_run(io, &row, which)?;
            return Ok(outcome);
        }
        tokio::time::sleep(JOB_POLL).await;
        row = aws.job(id).await?;
    };
    let mut attempt = match selection.attempt {
        Some(n) => n,
        None => current_attempt(aws, &row).await?,
    };
    let prefix = driver_log_prefix(&row.id, &app, &run);
    let group = log_group(aws, &row);
    let mut stream = open(aws, &group, &prefix, attempt, selection, &[]).await?;
    if let Some((_, first)) = &stream {
        print_lines(io, attempt, which, first);
    }
    // The streams of the attempts left behind: never the next attempt's (`open` may look at the plain path).
    let mut left: Vec<String> = Vec::new();
    let mut last_job_read = Instant::now();
    let mut final_since: Option<Instant> = None;
    loop {
        read_more(io, aws, &mut stream, &group, &prefix, attempt, selection, &left).await?;
        if let Some(since) = final_since {
            if since.elapsed() >= DRAIN {
                if stream.is_none() {
                    fallback(io, &row, which)?;
                }
                return Ok(row.outcome().unwrap_or(Exit::Ok));
            }
        } else if last_job_read.elapsed() >= JOB_POLL {
            last_job_read = Instant::now();
            row = aws.job(id).await?;
            if row.is_final() {
                final_since = Some(Instant::now());
            } else if selection.attempt.is_none() {
                let now = current_attempt(aws, &row).await?;
                // Drain each attempt that ended (EMR may write its stream only as it ends), then
                // move to the next one's stream.
                while now > attempt {
                    read_more(io, aws, &mut stream, &group, &prefix, attempt, selection, &left).await?;
                    left.push(stream.take().map(|(s, _)| s.stream).unwrap_or_else(|| driver_log_stream(&prefix, Some(attempt), which)));
                    attempt += 1;
                    note_to(io.err, paint(BOLD, format!("── attempt {attempt} of {} (the run was retried) ──", row.max_attempts())));
                    stream = open(aws, &group, &prefix, attempt, selection, &left).await?;
                    if let Some((_, first)) = &stream {
                        print_lines(io, attempt, which, first);
                    }
                }
            }
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// What arrived in the attempt's stream since the last read; the stream is opened first when it
/// did not exist yet (never one of `left`, the earlier attempts').
#[allow(clippy::too_many_arguments)]
async fn read_more(
    io: &mut Streams<'_>,
    aws: &Aws,
    stream: &mut Option<(LogStream, Vec<String>)>,
    group: &str,
    prefix: &str,
    attempt: i32,
    selection: Selection<'_>,
    left: &[String],
) -> Result<(), CliError> {
    match stream.as_mut() {
        Some((s, _)) => {
            if let Read::Events(lines) = s.read_new(&aws.logs).await? {
                print_lines(io, attempt, selection.which, &lines);
            }
        }
        None => {
            *stream = open(aws, group, prefix, attempt, selection, left).await?;
            if let Some((_, first)) = stream.as_ref() {
                print_lines(io, attempt, selection.which, first);
            }
        }
    }
    Ok(())
}

/// The run's log group: the one monitor recorded, else the configured one.
fn log_group(aws: &Aws, row: &JobRow) -> String {
    row.driver_logs.as_ref().and_then(|d| d.log_group_name.clone()).unwrap_or_else(|| aws.log_group.clone())
}

/// The run's latest attempt: GetJobRun's while it goes, the row's once it is final.
async fn current_attempt(aws: &Aws, row: &JobRow) -> Result<i32, CliError> {
    match row.run() {
        Some((app, run)) if !row.is_final() => Ok(aws.runs.get_job_run(app, run).await?.attempt.unwrap_or(1).max(row.latest_attempt())),
        _ => Ok(row.latest_attempt()),
    }
}

/// The attempt's stream, where EMR writes it (and the other layout, as monitor looks), read to
/// its current end; `None` when neither exists (yet). The streams in `skip` are not looked at: a
/// retried attempt's stream does not exist until EMR writes it, and the other layout's path of
/// attempt 2 is attempt 1's own stream.
async fn open(aws: &Aws, group: &str, prefix: &str, attempt: i32, selection: Selection<'_>, skip: &[String]) -> Result<Option<(LogStream, Vec<String>)>, CliError> {
    for name in driver_log_streams(prefix, Some(attempt), selection.which).into_iter().filter(|name| !skip.contains(name)) {
        let mut stream = LogStream::new(group, &name, selection.start_time);
        if let Read::Events(lines) = stream.read_new(&aws.logs).await? {
            return Ok(Some((stream, lines)));
        }
    }
    Ok(None)
}

fn print_lines(io: &mut Streams<'_>, attempt: i32, which: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    if io.printer.is_text() {
        io.printer.text_to(io.out, &lines.join("\n"));
    } else {
        for message in lines {
            io.printer.json_to(io.out, &LogLine { attempt, stream: which, message });
        }
    }
}

/// The tail monitor stored on the row, when CloudWatch has no stream; an error when there is none.
fn fallback(io: &mut Streams<'_>, row: &JobRow, which: &str) -> Result<(), CliError> {
    let Some(logs) = &row.driver_logs else {
        return Err(CliError::Client(match row.run() {
            Some(_) => format!("no {which} log stream for job {} yet, and no stored tail on its row", row.id),
            None => format!("job {} has no run (it is {}), so no driver logs", row.id, row.job_status.map(|s| s.as_str()).unwrap_or("?")),
        }));
    };
    let text = if which == "stderr" { &logs.stderr } else { &logs.stdout };
    let attempt = logs.attempt.map(|a| format!(" of attempt {a}")).unwrap_or_default();
    let cut = if logs.truncated { ", its end only" } else { "" };
    hint_to(io.err, format!("the CloudWatch stream is gone: the {which} tail stored on the row{attempt}{cut}"));
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    print_lines(io, logs.attempt.unwrap_or(1), which, &lines);
    Ok(())
}

/// A followed job that ended before it had a run (submit refused it, or it was cancelled while
/// waiting): the stored tail if any, else why it ended, on `err`.
fn ended_without_run(io: &mut Streams<'_>, row: &JobRow, which: &str) -> Result<(), CliError> {
    if row.driver_logs.is_some() {
        return fallback(io, row, which);
    }
    let status = row.job_status.map(|s| s.as_str()).unwrap_or("?");
    let why = row.error_message.as_deref().and_then(|m| m.lines().next()).map(|m| format!(": {m}")).unwrap_or_default();
    note_to(io.err, format!("job {} ended {status} before it had a run, so there are no driver logs{why}", row.id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::{failed_twice, running};

    /// Runs `f` with buffers for stdout and stderr; answers its result and what it wrote to each, colour stripped.
    fn captured<T>(f: impl FnOnce(&mut Streams<'_>) -> T) -> (T, String, String) {
        let printer = Printer { format: crate::cli::Format::Text };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = f(&mut Streams { printer: &printer, out: &mut out, err: &mut err });
        let plain = |bytes: Vec<u8>| anstream::adapter::strip_str(&String::from_utf8(bytes).unwrap()).to_string();
        (result, plain(out), plain(err))
    }

    #[test]
    fn the_stored_tail_stands_in_for_a_gone_stream() {
        let row = failed_twice();
        let (result, out, err) = captured(|io| fallback(io, &row, "stderr"));
        assert!(result.is_ok());
        assert_eq!(out, format!("{}\n", row.driver_logs.as_ref().unwrap().stderr.trim_end()));
        assert_eq!(err, "hint: the CloudWatch stream is gone: the stderr tail stored on the row of attempt 2\n");

        let (result, out, err) = captured(|io| fallback(io, &running(), "stdout"));
        let err_value = result.unwrap_err();
        assert_eq!(err_value.to_string(), "no stdout log stream for job job-run yet, and no stored tail on its row");
        assert_eq!(err_value.exit(), Exit::Client);
        assert_eq!((out.as_str(), err.as_str()), ("", ""), "an error is the caller's to print");
    }

    #[test]
    fn a_job_that_ended_before_its_run_says_why_instead_of_failing() {
        let row = JobRow {
            id: "refused".into(),
            job_status: Some(shared::job::record::JobStatus::Error),
            error_message: Some("job refused: validate job: no primary source\nmore".into()),
            ..Default::default()
        };
        let (result, out, err) = captured(|io| ended_without_run(io, &row, "stdout"));
        assert!(result.is_ok());
        assert_eq!(out, "");
        assert_eq!(err, "job refused ended ERROR before it had a run, so there are no driver logs: job refused: validate job: no primary source\n");
    }
}
