//! `omnigate exec`: one statement on a running gateway. With `--stream`
//! each batch is printed as it arrives and then dropped, so the CLI's
//! memory stays that of a batch or two whatever the result's size; Ctrl-C
//! and `--timeout` stop it after what was printed.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use omnigate_proto::v1 as pb;

use super::client::connect;
use super::output::{self, Printer};
use super::{ClientArgs, Failure, failure, params};

/// `omnigate exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The statement's dialect: sql, redis, cypher, ts.
    #[arg(long, short)]
    dialect: String,
    /// The engine to run on (needed when several serve the dialect).
    #[arg(long, short)]
    target: Option<String>,
    /// Fail if the result has more rows than this.
    #[arg(long)]
    max_rows: Option<u64>,
    /// A statement timeout, e.g. 500ms or 5s (sent as the call's deadline).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Refuse statements that would write.
    #[arg(long)]
    read_only: bool,
    /// Print the result batch by batch as it arrives (ExecuteStream), in
    /// bounded memory; with --json, one JSON line per batch.
    #[arg(long)]
    stream: bool,
    /// Rows per batch with --stream.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Redis bulk strings as bytes even when they are valid UTF-8.
    #[arg(long)]
    raw_bytes: bool,
    /// A named parameter for cypher, as name=value (value typed as for
    /// positional params); repeat for more.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    named: Vec<String>,
    /// The graph (falkordb) or database (neo4j) to run in.
    #[arg(long)]
    database: Option<String>,
    /// Run inside this transaction (from `omnigate tx begin`).
    #[arg(long = "tx", value_name = "ID")]
    tx_id: Option<String>,
    #[command(flatten)]
    ts: params::TsArgs,
    /// The statement, as one argument (quote it); placeholders are $1..$n
    /// (cypher: $name).
    statement: String,
    /// Parameters: text, or typed as int:42, float:1.5, bool:true, null:, bytes:00ff, decimal:1.10, uuid:..., json:..., str:...
    params: Vec<String>,
}

/// `omnigate exec`: prints the result on stdout.
pub async fn exec(args: ExecArgs) -> Result<(), Failure> {
    check_quoted(&args.dialect, &args.statement, &args.params)?;
    let params = args
        .params
        .iter()
        .enumerate()
        .map(|(i, raw)| params::parse_param(&format!("${}", i + 1), raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| failure(m, 2))?;
    let named_params = args
        .named
        .iter()
        .map(|pair| params::parse_named(pair))
        .collect::<Result<_, _>>()
        .map_err(|m| failure(m, 2))?;
    let message = pb::ExecuteRequest {
        dialect: args.dialect,
        statement: args.statement,
        params,
        named_params,
        target: args.target.unwrap_or_default(),
        tx_id: args.tx_id.unwrap_or_default(),
        options: Some(pb::ExecuteOptions {
            max_rows: args.max_rows.unwrap_or(0),
            timeout: None,
            read_only: args.read_only,
            batch_size: args.batch_size.unwrap_or(0),
            raw_bytes: args.raw_bytes,
            database: args.database.unwrap_or_default(),
            ts: args.ts.to_proto().map_err(|m| failure(m, 2))?,
        }),
    };
    let mut request = tonic::Request::new(message);
    if let Some(timeout) = args.timeout {
        request.set_timeout(timeout);
    }
    let timed_out = |status: tonic::Status, printed: Option<u64>| {
        timeout_failure(status, args.timeout, printed)
    };
    let mut client = connect(&args.client).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.stream {
        let response = client
            .execute(request)
            .await
            .map_err(|s| timed_out(s, None))?
            .into_inner();
        let text = if args.client.json {
            format!("{}\n", output::result_json(&response))
        } else {
            output::result_table(&response)
        };
        return finish(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    }
    let mut printer = Printer::new(args.client.json);
    // A call that fails before its first batch printed nothing: say so as
    // any other failure.
    let mut stream = client
        .execute_stream(request)
        .await
        .map_err(|s| timed_out(s, Some(0)))?
        .into_inner();
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut interrupt => {
                // Dropping the stream cancels the call on the gateway.
                drop(stream);
                finish(out.flush())?;
                return Err(failure(
                    format!("interrupted: {} printed before it", rows(printer.rows())),
                    130,
                ));
            }
            next = stream.next() => next,
        };
        match next {
            None => break,
            Some(Ok(batch)) => {
                let written = printer.batch(&batch, &mut out).and_then(|()| out.flush());
                if let Err(e) = written {
                    return finish(Err(e));
                }
            }
            Some(Err(status)) => {
                finish(out.flush())?;
                return Err(timed_out(status, Some(printer.rows())));
            }
        }
    }
    finish(printer.end(&mut out).and_then(|()| out.flush()))
}

/// A write to stdout: a reader that went away (`| head`) ends the command
/// quietly, as other tools do.
fn finish(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(failure(format!("cannot write the result: {e}"), 1)),
    }
}

fn rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// A failed call. A deadline says the `--timeout` that was asked (the
/// gateway's message may say what was left of it when a batch began); a
/// stream says how many rows were printed before.
fn timeout_failure(
    status: tonic::Status,
    timeout: Option<Duration>,
    printed: Option<u64>,
) -> Failure {
    let expired = status.code() == tonic::Code::DeadlineExceeded
        || (status.code() == tonic::Code::Cancelled && status.message().contains("Timeout"));
    let mut failure = match (expired, timeout) {
        (true, Some(timeout)) => failure(
            format!(
                "timed out after {} (--timeout)",
                humantime::format_duration(timeout)
            ),
            1,
        ),
        _ => Failure::from(status),
    };
    if let Some(printed) = printed.filter(|n| *n > 0) {
        failure.message = format!("{}; {} printed before it", failure.message, rows(printed));
    }
    failure
}

/// Statements are one argument; the words after it are parameters. More
/// parameters than the statement's `$n` placeholders means the statement
/// was not quoted (`omnigate exec -d sql SELECT 1`): say so, with the
/// command quoted.
fn check_quoted(dialect: &str, statement: &str, params: &[String]) -> Result<(), Failure> {
    let highest = highest_placeholder(statement);
    if params.len() <= highest {
        return Ok(());
    }
    let extra = params.len() - highest;
    let words: Vec<&str> = std::iter::once(statement)
        .chain(params.iter().map(String::as_str))
        .collect();
    Err(failure(
        format!(
            "the statement is {statement:?} and {extra} more word{} follow{} it that no $n \
             placeholder takes: quote the whole statement as one argument, e.g. \
             omnigate exec -d {dialect} {}",
            if extra == 1 { "" } else { "s" },
            if extra == 1 { "s" } else { "" },
            shell_quote(&words.join(" ")),
        ),
        2,
    ))
}

/// The highest `$n` in `statement` (0: none).
fn highest_placeholder(statement: &str) -> usize {
    let mut highest = 0;
    let mut rest = statement;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            highest = highest.max(n);
        }
    }
    highest
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn unquoted_statements_are_told_to_quote() {
        let err = check_quoted("sql", "SELECT", &words(&["1"])).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(
            err.message.ends_with(
                "quote the whole statement as one argument, e.g. omnigate exec -d sql 'SELECT 1'"
            ),
            "{}",
            err.message
        );
        let err = check_quoted("redis", "SET", &words(&["greeting", "it's"])).unwrap_err();
        assert!(
            err.message.contains("2 more words follow it"),
            "{}",
            err.message
        );
        assert!(
            err.message.ends_with(r"-d redis 'SET greeting it'\''s'"),
            "{}",
            err.message
        );
        assert!(check_quoted("sql", "SELECT $1, $2", &words(&["a", "b"])).is_ok());
        assert!(check_quoted("sql", "SELECT 1", &[]).is_ok());
        assert!(check_quoted("sql", "SELECT $2", &words(&["a", "b", "c"])).is_err());
    }

    #[test]
    fn placeholders_are_counted_by_their_highest_number() {
        assert_eq!(highest_placeholder("SELECT 1"), 0);
        assert_eq!(highest_placeholder("SELECT $1 + $12, '$'"), 12);
        assert_eq!(highest_placeholder("MATCH (n {name: $name})"), 0);
    }

    #[test]
    fn a_deadline_says_the_timeout_asked_and_the_rows_printed() {
        let status = tonic::Status::deadline_exceeded("timed out after 0ns");
        let failure = timeout_failure(status, Some(Duration::from_secs(1)), Some(3));
        assert_eq!(
            failure.message,
            "timed out after 1s (--timeout); 3 rows printed before it"
        );
        let other = timeout_failure(tonic::Status::internal("x"), None, Some(0));
        assert_eq!(other.message, "Internal: x");
    }
}
