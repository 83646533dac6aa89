//! How results are written: aligned tables and key/value blocks for people,
//! JSON or YAML of moon's own serde structs for programs.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use jiff::Timestamp;
use moon_core::LogLine;
use nix::sys::signal::Signal;
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// The `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and key/value blocks.
    Table,
    /// JSON: one pretty document, or one object per line for streams (logs, events).
    Json,
    /// YAML: one document, or one `---` document per item for streams.
    Yaml,
}

/// Writes to stdout in the chosen format. Every write is flushed so that
/// streamed lines appear as they happen, even through a pipe.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// The chosen format.
    pub format: Format,
}

impl Out {
    /// Whether output is for people.
    pub fn is_table(&self) -> bool {
        self.format == Format::Table
    }

    /// Text as is, for table mode.
    pub fn text(&self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if !text.is_empty() && !text.ends_with('\n') {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()
    }

    /// One whole value: pretty JSON or a YAML document.
    pub fn document<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let text = match self.format {
            Format::Yaml => to_yaml(value)?,
            Format::Json | Format::Table => {
                let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
                text.push('\n');
                text
            }
        };
        self.text(&text)
    }

    /// One item of a stream: a JSON line, or a YAML document opened by `---`.
    pub fn item<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let text = match self.format {
            Format::Yaml => format!("---\n{}", to_yaml(value)?),
            Format::Json | Format::Table => {
                let mut text = serde_json::to_string(value).map_err(io::Error::other)?;
                text.push('\n');
                text
            }
        };
        self.text(&text)
    }

    /// One replica's output line. In table mode it is prefixed with the
    /// replica's name unless asked not to, and a replica's stderr goes to
    /// stderr so that the two can still be told apart.
    pub fn log_line(&self, line: &LogLine, prefixed: bool) -> io::Result<()> {
        if !self.is_table() {
            return self.item(line);
        }
        let text = log_text(line, prefixed);
        if line.stream == "stderr" {
            let mut stderr = io::stderr().lock();
            stderr.write_all(text.as_bytes())?;
            stderr.flush()
        } else {
            self.text(&text)
        }
    }
}

fn to_yaml<T: Serialize>(value: &T) -> io::Result<String> {
    serde_yaml_ng::to_string(value).map_err(io::Error::other)
}

/// `[worker-0] line\n`, or just `line\n`.
pub fn log_text(line: &LogLine, prefixed: bool) -> String {
    if prefixed {
        format!("[{}] {}\n", line.replica, line.line)
    } else {
        format!("{}\n", line.line)
    }
}

/// Rows under headers, each column as wide as its widest cell, two spaces
/// apart. The last column is not padded, so no line ends in spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones are kept.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The width of each column.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|header| width(header)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i == widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(width(cell));
            }
        }
        widths
    }

    /// The table as lines, each ending in a newline.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut text = render_row(&self.headers, &widths);
        for row in &self.rows {
            text.push_str(&render_row(row, &widths));
        }
        text
    }
}

/// One line of cells padded to `widths`; a cell wider than its column
/// pushes the rest along rather than being cut. Used on its own for tables
/// that are streamed row by row, whose widths cannot be known in advance.
pub fn render_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if i + 1 < cells.len() {
            let column = widths.get(i).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(' ', column.saturating_sub(width(cell))));
        }
    }
    let mut line = line.trim_end().to_string();
    line.push('\n');
    line
}

/// The columns `text` takes on a terminal: two for a wide (CJK) character
/// or an emoji, none for a combining mark.
fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `Key:  value` lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let key_width = pairs
        .iter()
        .map(|(key, _)| width(key) + 1)
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (key, value) in pairs {
        // Padded by hand: `format!`'s width counts characters, not columns.
        let padding = key_width - (width(key) + 1) + 2;
        let line = format!("{key}:{:padding$}{value}", "");
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The cell for something that may be absent or empty.
pub fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => "-".to_string(),
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A duration as people read it, in one or two units as kubectl does:
/// `45s`, `3m12s`, `25m`, `3h20m`, `15h`, `3d4h`, `45d`.
pub fn format_duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    let two = |major: i64, major_unit: &str, minor: i64, minor_unit: &str| {
        if minor == 0 {
            format!("{major}{major_unit}")
        } else {
            format!("{major}{major_unit}{minor}{minor_unit}")
        }
    };
    if seconds < 60 {
        format!("{seconds}s")
    } else if minutes < 10 {
        two(minutes, "m", seconds % 60, "s")
    } else if hours < 1 {
        format!("{minutes}m")
    } else if hours < 10 {
        two(hours, "h", minutes % 60, "m")
    } else if days < 1 {
        format!("{hours}h")
    } else if days < 10 {
        two(days, "d", hours % 24, "h")
    } else {
        format!("{days}d")
    }
}

/// Time since `ms`, for AGE columns.
pub fn format_age(ms: i64, now_ms: i64) -> String {
    format_duration(now_ms - ms)
}

/// A moment as RFC 3339 in UTC, to the second: `2025-03-01T12:00:05Z`.
/// UTC because the time zone database is not consulted. A moment beyond the
/// years 9999 BC-AD 9999 (a clock or record gone wrong) is printed as the
/// milliseconds it is.
pub fn format_utc(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        // Precision 0 drops the fraction: the second the moment falls in.
        Ok(moment) => format!("{moment:.0}"),
        Err(_) => format!("{ms} ms after 1970-01-01T00:00:00Z"),
    }
}

/// How a replica's latest attempt ended: its exit code, the signal that
/// killed it (`SIGKILL`), or `-` while it runs.
pub fn exit_cell(exit_code: Option<i32>, signal: Option<i32>) -> String {
    match (exit_code, signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => signal_name(signal),
        (None, None) => "-".to_string(),
    }
}

/// `SIGKILL` for 9; a number with no name here (a real-time signal) as
/// `signal 64`.
fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(signal) => signal.as_str().to_string(),
        Err(_) => format!("signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|text| text.to_string()).collect()
    }

    #[test]
    fn tables_align_columns_and_leave_no_trailing_spaces() {
        let mut table = Table::new(&["TENANT", "NAME", "PHASE", "MESSAGE"]);
        table.row(cells(&["vision", "resnet-distributed", "Running", "-"]));
        table.row(cells(&[
            "nlp",
            "bert",
            "Pending",
            "tenant nlp: gpus 4 of 4 in use",
        ]));
        assert_eq!(
            table.render(),
            "\
TENANT  NAME                PHASE    MESSAGE
vision  resnet-distributed  Running  -
nlp     bert                Pending  tenant nlp: gpus 4 of 4 in use
"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["NAME", "CPUS"]).render(), "NAME  CPUS\n");
    }

    #[test]
    fn empty_last_cells_leave_no_trailing_spaces() {
        let mut table = Table::new(&["A", "B"]);
        table.row(cells(&["long-value", ""]));
        assert_eq!(table.render(), "A           B\nlong-value\n");
    }

    #[test]
    fn streamed_rows_push_past_narrow_columns() {
        let widths = [4, 4];
        assert_eq!(
            render_row(&cells(&["ab", "cd", "ef"]), &widths),
            "ab    cd    ef\n"
        );
        assert_eq!(
            render_row(&cells(&["abcdef", "cd", "ef"]), &widths),
            "abcdef  cd    ef\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::new(&["NAME", "X"]);
        table.row(cells(&["héllo", "1"]));
        assert_eq!(table.render(), "NAME   X\nhéllo  1\n");
    }

    #[test]
    fn widths_count_terminal_columns() {
        let mut table = Table::new(&["NAME", "X"]);
        // Two columns per CJK character and emoji; none for the combining
        // acute accent of the decomposed `é`.
        table.row(cells(&["视觉", "1"]));
        table.row(cells(&["🚀", "2"]));
        table.row(cells(&["he\u{301}llo", "3"]));
        assert_eq!(
            table.render(),
            "NAME   X\n视觉   1\n🚀     2\nhe\u{301}llo  3\n"
        );
        assert_eq!(
            key_values(&[("名前", "a".into()), ("Phase", "b".into())]),
            "名前:   a\nPhase:  b\n"
        );
    }

    #[test]
    fn key_values_align_values() {
        assert_eq!(
            key_values(&[
                ("Job", "vision/xgb".into()),
                ("Framework", "xgboost".into()),
                ("Reason", "".into())
            ]),
            "Job:        vision/xgb\nFramework:  xgboost\nReason:\n"
        );
    }

    #[test]
    fn durations_use_one_or_two_units() {
        let cases = [
            (0, "0s"),
            (-5_000, "0s"),
            (45_000, "45s"),
            (60_000, "1m"),
            (192_000, "3m12s"),
            (25 * 60_000 + 30_000, "25m"),
            (3 * 3_600_000 + 20 * 60_000, "3h20m"),
            (15 * 3_600_000 + 59 * 60_000, "15h"),
            (3 * 86_400_000 + 4 * 3_600_000, "3d4h"),
            (2 * 86_400_000, "2d"),
            (45 * 86_400_000, "45d"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_duration(ms), expected, "{ms} ms");
        }
        assert_eq!(format_age(1_000, 61_000), "1m");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_735_689_599_999), "2024-12-31T23:59:59Z");
        assert_eq!(format_utc(1_740_830_405_000), "2025-03-01T12:00:05Z");
        assert_eq!(format_utc(-1_000), "1969-12-31T23:59:59Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_utc(1_740_830_405_999), "2025-03-01T12:00:05Z");
        assert_eq!(
            format_utc(i64::MAX),
            "9223372036854775807 ms after 1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn exit_cells_name_codes_and_signals() {
        assert_eq!(exit_cell(Some(0), None), "0");
        assert_eq!(exit_cell(Some(137), None), "137");
        assert_eq!(exit_cell(None, Some(9)), "SIGKILL");
        assert_eq!(exit_cell(None, Some(15)), "SIGTERM");
        // Named beyond the dozen that a hand-written table had.
        assert_eq!(exit_cell(None, Some(24)), "SIGXCPU");
        assert_eq!(exit_cell(None, Some(64)), "signal 64");
        assert_eq!(exit_cell(None, Some(0)), "signal 0");
        assert_eq!(exit_cell(None, Some(-3)), "signal -3");
        assert_eq!(exit_cell(None, None), "-");
    }

    #[test]
    fn log_lines_are_prefixed_with_their_replica() {
        let line = LogLine {
            replica: "worker-0".into(),
            stream: "stdout".into(),
            time_ms: 0,
            line: "hi".into(),
        };
        assert_eq!(log_text(&line, true), "[worker-0] hi\n");
        assert_eq!(log_text(&line, false), "hi\n");
    }

    #[test]
    fn blanks_become_dashes() {
        assert_eq!(or_dash(None), "-");
        assert_eq!(or_dash(Some("")), "-");
        assert_eq!(or_dash(Some("Quota")), "Quota");
    }
}
