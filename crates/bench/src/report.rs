//! The printed result: a header describing the data and backends, then one markdown table.

use std::fmt::Write as _;

use crate::filters::Filter;
use crate::library::Library;
use std::time::Duration;

use crate::measure::{
    HTTP_COLD, HTTP_WARM, Latencies, MIXED_COLD, MIXED_SQL, Results, SQL_DIVISION, SQL_SHAPE,
};
use crate::seed::Seeded;

/// Mismatches printed in full; the rest are only counted.
const PROBLEMS_SHOWN: usize = 20;

pub struct Header<'a> {
    pub seeded: &'a Seeded,
    pub library: &'a Library,
    pub seed: u64,
    pub mysql_version: String,
    pub redis_version: String,
    pub buffer_pool: u64,
    pub data_bytes: u64,
    pub owners: usize,
    pub build: Build,
}

/// The search index's build and size.
pub struct Build {
    /// `index::build_now` in the bench's process, from the database.
    pub bench: Duration,
    /// From the server's first list to `/readyz` reporting the index ready.
    pub server: Duration,
    /// The bench's index.
    pub bytes: u64,
    pub customers: u64,
    /// The server's index, as `/readyz` reports it.
    pub server_bytes: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

pub fn render(header: &Header<'_>, results: &Results) -> String {
    let seeded = header.seeded;
    let library = header.library;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "customers: {} ({} soft-deleted, owned by {} reps) · tag links: {} · tags: {} in {} groups \
         ({} exclusive) · seed {}",
        group(seeded.customers),
        group(seeded.deleted),
        header.owners,
        group(seeded.links),
        library.by_rank.len(),
        library.groups,
        library.exclusive_groups,
        header.seed
    );
    let _ = writeln!(
        out,
        "seeding: {:.1} s, {} rows/s · backends: MySQL/MariaDB {} (buffer pool {} MiB, data and \
         indexes {} MiB), Redis {}",
        seeded.elapsed.as_secs_f64(),
        group(seeded.rows_per_sec() as u64),
        header.mysql_version,
        header.buffer_pool / (1024 * 1024),
        header.data_bytes / (1024 * 1024),
        header.redis_version
    );
    for (what, totals) in [
        ("`A AND B AND NOT C`", &results.totals),
        ("tag AND owner AND stage AND keyword", &results.mixed_totals),
    ] {
        let mut sorted = totals.clone();
        sorted.sort_unstable();
        let _ = writeln!(
            out,
            "filters: {} × {what}, limit 50 · matches per filter: min {}, median {}, max {} ({} \
             empty)",
            sorted.len(),
            group(sorted.first().copied().unwrap_or(0).max(0) as u64),
            group(sorted.get(sorted.len() / 2).copied().unwrap_or(0).max(0) as u64),
            group(sorted.last().copied().unwrap_or(0).max(0) as u64),
            sorted.iter().filter(|&&t| t == 0).count()
        );
    }
    let build = &header.build;
    let per_million = |x: f64| x * 1_000_000.0 / (build.customers.max(1) as f64);
    let _ = writeln!(
        out,
        "index build from the database: {:.1} s in the bench ({:.1} s per 1M customers), {:.1} s \
         in the server (first list to ready) · index memory: {:.1} MiB ({:.1} MiB per 1M \
         customers), the server's {:.1} MiB",
        build.bench.as_secs_f64(),
        per_million(build.bench.as_secs_f64()),
        build.server.as_secs_f64(),
        build.bytes as f64 / MIB,
        per_million(build.bytes as f64 / MIB),
        build.server_bytes as f64 / MIB
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| path | p50 ms | p99 ms | max ms | queries |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for row_ in &results.rows {
        let _ = writeln!(out, "{}", row(row_.name, &row_.latencies));
    }
    let ratio = |slow: &str, fast: &str| -> String {
        match (results.row(slow), results.row(fast)) {
            (Some(s), Some(f)) if !s.is_empty() && !f.is_empty() => format!(
                "{:.1}×",
                s.value_at_quantile(0.5) as f64 / f.value_at_quantile(0.5).max(1) as f64
            ),
            _ => "–".to_owned(),
        }
    };
    let _ = writeln!(
        out,
        "\np50 ratios in this run: the server's SQL / HTTP cold {} · relational division / HTTP \
         cold {} · HTTP cold / HTTP warm {} · mixed: SQL / HTTP cold {}",
        ratio(SQL_SHAPE, HTTP_COLD),
        ratio(SQL_DIVISION, HTTP_COLD),
        ratio(HTTP_COLD, HTTP_WARM),
        ratio(MIXED_SQL, MIXED_COLD)
    );
    let verdict = if results.problems.is_empty() {
        "every HTTP answer (total, page ids and items) matched SQL's".to_owned()
    } else {
        format!("{} problem(s), listed on stderr", results.problems.len())
    };
    let _ = write!(out, "\ncheck: {verdict}");
    out
}

fn row(name: &str, latencies: &Latencies) -> String {
    if latencies.is_empty() {
        return format!("| {name} | – | – | – | 0 |");
    }
    format!(
        "| {name} | {} | {} | {} | {} |",
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max()),
        latencies.len()
    )
}

/// A markdown row: name, operations, operations per second over `elapsed`, p50, p99, max.
pub(crate) fn latency_row(
    name: &str,
    latencies: &crate::measure::Latencies,
    elapsed: std::time::Duration,
) -> String {
    if latencies.is_empty() {
        return format!("| {name} | 0 | – | – | – | – |");
    }
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        group(latencies.len()),
        group((latencies.len() as f64 / elapsed.as_secs_f64()) as u64),
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max())
    )
}

pub(crate) fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// 1234567 → "1,234,567".
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The filters slowest over HTTP with the cache bypassed, on stderr: where to look first.
pub fn print_slowest(filters: &[Filter], results: &Results, count: usize) {
    let mut order: Vec<usize> = (0..results.per_filter.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(results.per_filter[i].0));
    eprintln!("slowest filters, HTTP cold:");
    for &i in order.iter().take(count) {
        let (http, sql) = results.per_filter[i];
        eprintln!(
            "  {:>8.2} ms HTTP, {:>8.2} ms SQL, {:>7} matches: {}",
            http.as_secs_f64() * 1000.0,
            sql.as_secs_f64() * 1000.0,
            results.totals.get(i).copied().unwrap_or(0),
            filters[i].describe()
        );
    }
}

pub fn print_problems(problems: &[String]) {
    for problem in problems.iter().take(PROBLEMS_SHOWN) {
        eprintln!("MISMATCH {problem}");
    }
    if problems.len() > PROBLEMS_SHOWN {
        eprintln!("… and {} more", problems.len() - PROBLEMS_SHOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
