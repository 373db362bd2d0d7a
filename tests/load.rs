//! The load tool end to end, briefly: it starts the service as a child process, drives the signed
//! webhook from 16 connections at once, and every request is answered. (This is also the
//! regression test for concurrent flushes: sled 0.34's `flush_async` deadlocked under exactly this
//! load; see `store::writer`.)

/// Runs `concierge load` with `args`; its report, once it has succeeded.
fn load(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("load")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `concierge` with `args`, which it must refuse; what it said on stderr.
fn refused(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} was not refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sixteen_connections_are_all_answered() {
    let stdout = load(&[
        "--duration",
        "2",
        "--warmup",
        "0",
        "--connections",
        "16",
        "--numbers",
        "1000000",
    ]);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
            .to_string()
    };
    let concierge = line("concierge ");
    assert!(concierge.ends_with("errors 0"), "{concierge}");
    let ok: u64 = concierge
        .split("ok ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(ok > 100, "{concierge}");
    assert!(line("baseline ").ends_with("errors 0"));
    assert!(line("ratio:").contains("concierge / baseline throughput"));
    // Both runs say what a request cost in CPU, the service's and the load generator's.
    let cpu_lines = stdout
        .lines()
        .filter(|l| l.contains("CPU per request: service ") && l.contains("load generator"))
        .count();
    assert_eq!(cpu_lines, 2, "{stdout}");
    // And, on Linux, what the machine's disks wrote, a request's share of it.
    if cfg!(target_os = "linux") {
        let disk_lines = stdout
            .lines()
            .filter(|l| l.contains("the machine's disks: written ") && l.contains(" a request; "))
            .count();
        assert_eq!(disk_lines, 2, "{stdout}");
    }
    // Flushes the ways the write-ahead log meets them: over zeros, growing the file, and over
    // zeros at the pace of its syncs under load.
    let flush = line("disk flush");
    assert!(
        flush.contains("in place p50")
            && flush.contains("growing the file p50")
            && flush.contains("in place, 0.5 ms apart (the log's pace under load) p50"),
        "{flush}"
    );
}

/// The open loop sends exactly its schedule: `rate × duration` requests, each counted once,
/// however the connections happen to be busy.
#[test]
fn an_open_loop_sends_exactly_its_schedule() {
    let stdout = load(&[
        "--no-baseline",
        "--duration",
        "2",
        "--warmup",
        "1",
        "--rate",
        "400",
        "--connections",
        "8",
        "--numbers",
        "1000000",
        "--timeline",
    ]);
    let concierge = stdout
        .lines()
        .find(|l| l.starts_with("concierge "))
        .unwrap_or_else(|| panic!("no concierge line in {stdout}"));
    assert!(
        concierge.contains(" 400 req/s") && concierge.ends_with("ok 800  errors 0"),
        "{concierge}"
    );
    // It tells how much of the latency was spent waiting to be sent, and how late the arrival
    // thread woke up at worst: its sleeps of 1 ms or more always overrun a little (the kernel's
    // timer slack is 50 µs), so a zero would mean the oversleeps were never read.
    let wait = stdout
        .lines()
        .find(|l| l.contains("of which waiting to be sent") && l.contains("p99"))
        .unwrap_or_else(|| panic!("no wait line in {stdout}"));
    let overslept: f64 = wait
        .split_once("the arrival thread overslept at most ")
        .and_then(|(_, rest)| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("no oversleep in {wait}"))
        .parse()
        .unwrap();
    assert!(overslept > 0.0, "{wait}");
    // Second by second: each of the two seconds had its 400 requests due, all answered.
    let seconds: Vec<&str> = stdout.lines().filter(|l| l.contains("second ")).collect();
    assert_eq!(seconds.len(), 2, "{stdout}");
    for (i, line) in seconds.iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "  second   {}: answered     400  over 10 ms",
                i + 1
            )),
            "{line}"
        );
    }
}

/// A long-running service's test: runs back to back against one service, each reported, then
/// how many kept their p99 within 10 ms; the whole is merged into the usual report.
#[test]
fn runs_go_back_to_back_against_one_service() {
    let stdout = load(&[
        "--no-baseline",
        "--runs",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--rate",
        "300",
        "--connections",
        "4",
        "--numbers",
        "1000000",
        "--timeline",
    ]);
    for run in ["run   1/2 ", "run   2/2 "] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("no {run} line in {stdout}"));
        assert!(line.ends_with("ok 300  errors 0"), "{line}");
    }
    // Each run's own service times (the service started has a metrics listener) and timeline.
    let services: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("the service's metrics: /sms handler"))
        .collect();
    assert_eq!(services.len(), 3, "each run's, then the whole's: {stdout}");
    // The service samples its runtime's lag a hundred times a second: each run has samples.
    for line in services {
        let lag = line
            .split_once("runtime lag ")
            .unwrap_or_else(|| panic!("no runtime lag in {line}"))
            .1;
        let samples: u64 = lag.split(',').next().unwrap().trim().parse().unwrap();
        assert!(samples > 0, "{line}");
    }
    // Each run's own wait for a connection (an open loop), then the whole's.
    let waits = stdout
        .lines()
        .filter(|l| l.contains("of which waiting to be sent"))
        .count();
    assert_eq!(waits, 3, "each run's, then the whole's: {stdout}");
    // Each run's own timeline: one second each, with the machine's CPUs in that second and the
    // service's times, its connection threads' busy shares and its threads' CPU and wait among
    // them.
    let seconds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("second   1:"))
        .collect();
    assert_eq!(seconds.len(), 2, "{stdout}");
    for line in seconds {
        if cfg!(target_os = "linux") {
            assert!(line.contains("  | CPUs busy "), "{line}");
            assert!(line.contains(" %, steal "), "{line}");
            // Each busy thread's time on a CPU and waiting for one, the store writer's among
            // them (it ran every message's batch).
            assert!(
                line.contains("; threads on a CPU / waiting for one: "),
                "{line}"
            );
            assert!(line.contains("store-writer "), "{line}");
        }
        assert!(line.contains("  | /sms handler "), "{line}");
        assert!(line.contains("; busy accept "), "{line}");
        assert!(line.contains(", conn-0 "), "{line}");
    }
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("runs with p99 within 10 ms: "))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    assert!(summary.contains(" of 2 (p99 "), "{summary}");
    let concierge = stdout
        .lines()
        .find(|l| l.starts_with("concierge "))
        .unwrap_or_else(|| panic!("no concierge line in {stdout}"));
    assert!(concierge.ends_with("ok 600  errors 0"), "{concierge}");
}

#[test]
fn runs_without_no_baseline_are_refused() {
    let stderr = refused(&["load", "--runs", "3", "--duration", "1"]);
    assert!(stderr.contains("--no-baseline"), "{stderr}");
}

/// `--work-dir` chooses the disk a run measures: the flush probe and the started service's store
/// go under it, and nothing of the run is left there afterwards.
#[test]
fn the_work_dir_holds_the_run_and_is_left_empty() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["load", "--no-baseline", "--duration", "2", "--warmup", "0"])
        .args(["--rate", "200", "--connections", "4", "--work-dir", dir])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs, the service's write-ahead log is in a scratch folder under the work dir.
    let wal = || {
        std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .any(|entry| entry.path().join("data").join("wal").exists())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !wal() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let seen = wal();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seen, "no store under the work dir during the run: {stdout}");
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start) || l.contains(start))
            .unwrap_or_else(|| panic!("no {start} line in {stdout}"))
            .to_string()
    };
    assert!(
        line("disk flush ").contains(&format!(" in {dir}): ")),
        "{stdout}"
    );
    assert!(line("concierge ").ends_with("ok 400  errors 0"), "{stdout}");
    // The store writer synced its log for those messages, and the service's line says how long
    // a sync took on that disk on average.
    let service = line("the service's metrics: /sms handler");
    let syncs = service
        .split_once("; log syncs ")
        .unwrap_or_else(|| panic!("no log syncs in {service}"))
        .1;
    assert!(syncs.contains(", mean "), "{service}");
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `load` never opens a data dir, so one given is refused rather than ignored.
#[test]
fn a_data_dir_is_refused() {
    let stderr = refused(&[
        "--data-dir",
        "/nonexistent/concierge",
        "load",
        "--duration",
        "1",
    ]);
    assert!(stderr.contains("--work-dir"), "{stderr}");
}

/// Several connection counts: a closed loop against both servers at each in turn, each count's
/// ratio, then each server's capacity, its best run with p99 within 10 ms, and their ratio.
#[test]
fn a_sweep_of_connection_counts_reports_each_servers_capacity() {
    let stdout = load(&[
        "--duration",
        "1",
        "--warmup",
        "0",
        "--connections",
        "4,8",
        "--numbers",
        "1000000",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    // Each count's runs follow its heading: (throughput, p99) of each server.
    let mut runs: Vec<(usize, [(f64, f64); 2])> = Vec::new();
    for n in [4, 8] {
        let at = lines
            .iter()
            .position(|l| *l == format!("at {n} connections:"))
            .unwrap_or_else(|| panic!("no heading for {n} in {stdout}"));
        let run = |name: &str| {
            let line = lines[at..]
                .iter()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} line after {n} in {stdout}"));
            assert!(line.ends_with("errors 0"), "{line}");
            let field = |before: &str, after: &str| -> f64 {
                line.split_once(before)
                    .and_then(|(_, rest)| rest.split_once(after))
                    .map(|(value, _)| value.trim().parse().unwrap())
                    .unwrap_or_else(|| panic!("no {before} in {line}"))
            };
            (field(name, "req/s"), field("p99", "ms"))
        };
        runs.push((n, [run("concierge "), run("baseline ")]));
        assert!(
            lines[at..].iter().any(|l| l.starts_with(&format!(
                "ratio at {n} connections: concierge / baseline throughput = "
            ))),
            "{stdout}"
        );
    }
    // The capacity line names, for each server, its fastest count among those within 10 ms.
    let capacity = lines
        .iter()
        .find(|l| l.starts_with("capacity (the most req/s at any of 4, 8 connections"))
        .unwrap_or_else(|| panic!("no capacity line in {stdout}"));
    let mut at = Vec::new();
    for (i, name) in ["concierge", "baseline"].iter().enumerate() {
        let (n, (rate, _)) = runs
            .iter()
            .map(|(n, r)| (*n, r[i]))
            .filter(|(_, (_, p99))| *p99 <= 10.0)
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .unwrap_or_else(|| panic!("no run within 10 ms: {stdout}"));
        assert!(
            capacity.contains(&format!("{name} {rate:.0} req/s at {n}")),
            "{name}: {capacity}"
        );
        at.push(n);
    }
    // The ratio is the one measured at concierge's capacity, in the same alternating rounds.
    let ratio = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {prefix} in {stdout}"))
            .to_string()
    };
    assert_eq!(
        ratio(&format!(
            "ratio at concierge's capacity ({} connections): concierge / baseline throughput = ",
            at[0]
        )),
        ratio(&format!(
            "ratio at {} connections: concierge / baseline throughput = ",
            at[0]
        )),
        "{stdout}"
    );
}

#[test]
fn a_sweep_with_a_rate_is_refused() {
    let stderr = refused(&[
        "load",
        "--connections",
        "4,8",
        "--rate",
        "100",
        "--duration",
        "1",
    ]);
    assert!(stderr.contains("closed loop"), "{stderr}");
}
