//! The `concierge` binary as an operator uses it: import, agenda queries with --json, demo, and
//! serve as a separate process (local defaults, SIGTERM shutdown, no secrets in its log, the store
//! lock).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use common::schedule;

fn concierge(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concierge"));
    // Run inside the temp dir so no ./concierge.toml or ./data of the developer is picked up.
    cmd.current_dir(dir).env_remove("RUST_LOG");
    for (var, _) in concierge::config::ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Copies the shipped intents to DIR/intents, where `serve` looks by default.
fn with_intents(dir: &Path) {
    let to = dir.join("intents");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&run_ok(cmd)).unwrap()
}

#[test]
fn import_then_query_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(concierge(dir.path()).args([
        "import",
        schedule("38c3.frab.schedule.xml").to_str().unwrap(),
    ]));
    assert!(out.contains("38C3: 1007 sessions, 72 rooms"), "{out}");

    let next = json(concierge(dir.path()).args([
        "agenda",
        "next",
        "--at",
        "2024-12-27T10:00:00+01:00",
        "--room",
        "Saal 1",
        "--limit",
        "2",
        "--json",
    ]));
    let first = &next[0];
    assert_eq!(first["id"], "2");
    assert_eq!(first["title"], "38C3: Opening Ceremony");
    assert_eq!(first["start"], "2024-12-27T10:30:00+01:00");
    assert_eq!(first["end"], "2024-12-27T11:00:00+01:00");
    assert_eq!(first["room"], "Saal 1");
    assert_eq!(first["track"], "CCC");
    assert_eq!(first["speakers"][0], "Gabriela Bogk");
    assert_eq!(next.as_array().unwrap().len(), 2);

    // --at in local time, read in the conference zone.
    let now = json(concierge(dir.path()).args([
        "agenda",
        "now",
        "--at",
        "2024-12-27T10:45",
        "--room",
        "saal 1",
        "--json",
    ]));
    assert_eq!(now[0]["id"], "2");

    let found = json(concierge(dir.path()).args(["agenda", "search", "jeopardy", "--json"]));
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["title"] == "Hacker Jeopardy"),
        "{found}"
    );

    let speaker = json(concierge(dir.path()).args(["agenda", "speaker", "senficon", "--json"]));
    assert_eq!(speaker[0]["name"], "Senficon");
    assert_eq!(speaker[0]["sessions"][0]["id"], "2");

    let show = run_ok(concierge(dir.path()).args(["agenda", "show"]));
    assert!(show.contains("day 1 2024-12-27: 245 sessions"), "{show}");

    // Unknown rooms are an error that lists the real ones.
    let out = concierge(dir.path())
        .args(["agenda", "next", "--room", "Saal 99"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no single room matches \"Saal 99\"; rooms: Saal 1")
    );
}

#[test]
fn queries_on_a_file_without_importing() {
    let dir = tempfile::tempdir().unwrap();
    let fosdem = schedule("fosdem-2026.pentabarf.schedule.xml");
    let next = json(concierge(dir.path()).args([
        "agenda",
        "next",
        "--file",
        fosdem.to_str().unwrap(),
        "--at",
        "2026-01-31T09:00:00+01:00",
        "--limit",
        "1",
        "--json",
    ]));
    assert_eq!(next[0]["title"], "Welcome to FOSDEM 2026");
    assert!(
        !dir.path().join("data").exists(),
        "--file must not touch the store"
    );
}

#[test]
fn demo_command_places_the_demo_on_the_asked_day() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(concierge(dir.path()).args(["demo", "--first-day", "2027-03-14"]));
    let next = json(concierge(dir.path()).args([
        "agenda",
        "next",
        "--at",
        "2027-03-14T08:30",
        "--limit",
        "1",
        "--json",
    ]));
    // 14 March 2027 is the first day of US daylight-saving time: 09:00 is still 09:00, now at -07:00.
    assert_eq!(next[0]["id"], "k1");
    assert_eq!(next[0]["start"], "2027-03-14T09:00:00-07:00");
}

/// Starts `concierge serve` on an ephemeral port; returns the child, its address, what it logged
/// until it listened, and the rest of its log.
#[expect(
    clippy::zombie_processes,
    reason = "the caller waits for the child it gets back"
)]
fn serve(dir: &Path, envs: &[(&str, &str)]) -> (Child, String, String, BufReader<ChildStderr>) {
    with_intents(dir);
    let mut child = concierge(dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(envs.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait();
            panic!("serve exited ({status:?}) before listening:\n{log}");
        }
        log.push_str(&line);
        if let Some(addr) = line.split("listening on http://").nth(1) {
            return (child, addr.trim().to_string(), log, stderr);
        }
    }
}

#[test]
fn serve_starts_on_defaults_stops_on_sigterm_and_keeps_secrets_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "admin-token-0123456789-very-secret";
    let twilio = "twilio-auth-token-do-not-log";
    let (mut child, addr, mut log, mut stderr) = serve(
        dir.path(),
        &[
            ("CONCIERGE_ADMIN_TOKEN", admin),
            (
                "CONCIERGE_TWILIO_ACCOUNT_SID",
                "AC00000000000000000000000000000000",
            ),
            ("CONCIERGE_TWILIO_AUTH_TOKEN", twilio),
            ("CONCIERGE_TWILIO_SENDER", "+15550001111"),
        ],
    );

    // The healthcheck subcommand (used by the Dockerfile) sees it.
    run_ok(concierge(dir.path()).args(["healthcheck", "--addr", &addr]));

    // The store is locked while serve runs, and the CLI says so in words.
    let out = concierge(dir.path())
        .args(["agenda", "now"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another concierge process"),
        "{err}"
    );

    // SIGHUP reloads the intents: a broken file is refused, a fixed one is taken.
    let kill = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let wait_for = |stderr: &mut BufReader<ChildStderr>, log: &mut String, needle: &str| loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve ended before {needle:?}:\n{log}"
        );
        log.push_str(&line);
        if line.contains(needle) {
            break;
        }
    };
    let extra = dir.path().join("intents/extra.toml");
    std::fs::write(&extra, "[[intent]]\nname = \"extra\"\nphrasez = 1\n").unwrap();
    kill("-HUP");
    wait_for(&mut stderr, &mut log, "intent reload refused");
    assert!(
        log.contains("extra.toml:3:1: unknown field `phrasez`"),
        "{log}"
    );
    std::fs::remove_file(&extra).unwrap();
    kill("-HUP");
    wait_for(&mut stderr, &mut log, "intents reloaded");
    assert!(log.contains("trigger=\"SIGHUP\""), "{log}");
    // SIGHUP reloads the routing file too: there was none (no experts); now there is one.
    if !log.contains("routing reload refused") {
        wait_for(&mut stderr, &mut log, "routing reload refused");
    }
    std::fs::create_dir_all(dir.path().join("fixtures")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/routing.toml"),
        dir.path().join("fixtures/routing.toml"),
    )
    .unwrap();
    kill("-HUP");
    wait_for(&mut stderr, &mut log, "routing file reloaded");

    kill("-TERM");
    let exit = child.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert!(exit.success(), "serve exited with {exit}:\n{log}");
    assert!(
        !log.contains("using local defaults"),
        "env vars were set:\n{log}"
    );
    assert!(log.contains("twilio=configured"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(
        !log.contains(admin) && !log.contains(twilio),
        "a secret was logged:\n{log}"
    );

    // With the server gone, the healthcheck fails.
    let out = concierge(dir.path())
        .args(["healthcheck", "--addr", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn serve_with_no_configuration_says_it_uses_local_defaults() {
    let dir = tempfile::tempdir().unwrap();
    with_intents(dir.path());
    let mut child = concierge(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(log.contains("using local defaults"), "{log}");
    assert!(log.contains("loaded the demo conference"), "{log}");
    assert!(
        dir.path().join("data/sled").is_dir(),
        "the store lives in ./data"
    );
}

#[test]
fn serve_refuses_to_start_with_broken_intents_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    with_intents(dir.path());
    std::fs::write(
        dir.path().join("intents/zz.toml"),
        "[[intent]]\nname = \"x\"\npatterns = ['(']\nresponse.action = \"my_agenda\"\n",
    )
    .unwrap();
    let out = concierge(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the intent files do not load"), "{err}");
    assert!(
        err.contains("zz.toml:3:13: invalid regular expression"),
        "{err}"
    );
}

#[test]
fn check_classify_and_try() {
    let dir = tempfile::tempdir().unwrap();
    let intents = concat!(env!("CARGO_MANIFEST_DIR"), "/intents");
    let out = run_ok(concierge(dir.path()).args(["check", intents]));
    assert!(out.contains("0 failed"), "{out}");
    assert!(out.contains("next_session"), "{out}");

    let mut child = concierge(dir.path())
        .args(["classify", "--intents", intents])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        "whats next in the bay room\nSTOP\nasdf\n".as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["text"], "whats next in the bay room");
    assert_eq!(lines[0]["intent"], "next_session");
    assert_eq!(lines[0]["entities"]["room"], "Bay Room");
    assert!(lines[0]["confidence"].as_f64().unwrap() > 0.9);
    assert!(lines[0]["explain"]["phrases"].as_array().unwrap().len() >= 2);
    assert_eq!(lines[1]["intent"], "opt_out");
    assert_eq!(lines[2]["intent"], "fallback");

    let out = run_ok(concierge(dir.path()).args([
        "try",
        "nxt talk about webrtc pls",
        "--intents",
        intents,
    ]));
    assert!(out.contains("intent:     next_session"), "{out}");
    assert!(out.contains("corrected:  \"nxt\" -> \"next\""), "{out}");

    // A broken set: check exits non-zero and names the place.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("a.toml"),
        "[[intent]]\nname = \"fallback\"\nresponse.reply.en = \"x\"\nexamples = [1]\n",
    )
    .unwrap();
    let out = concierge(dir.path())
        .args(["check", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a.toml:4:13"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn chat_scripts_a_conversation_against_the_store() {
    let dir = tempfile::tempdir().unwrap();
    with_intents(dir.path());
    run_ok(concierge(dir.path()).args(["demo", "--first-day", "2026-06-09"]));
    let say = |text: &str| {
        run_ok(concierge(dir.path()).args([
            "chat",
            "--from",
            "+15551230009",
            "--at",
            "2026-06-09T10:05",
            text,
        ]))
    };
    assert!(say("whats next").starts_with("Next up:\n1) 10:30 Main Stage"));
    assert!(
        say("3").starts_with("Saved to your agenda: Designing SMS Conversations People Answer")
    );
    assert!(
        say("my agenda").contains("1) 10:30 Bay Room: Designing SMS Conversations People Answer")
    );
    assert!(say("STOP").contains("unsubscribed"));
    assert_eq!(say("whats next"), "(no reply)\n");
    // The conversation is the SMS number's: its transcript is in the store.
    let store = concierge::store::Store::open(&dir.path().join("data"), 8 << 20).unwrap();
    assert!(store.is_opted_out("+15551230009").unwrap());
    assert_eq!(store.transcript("sms:+15551230009").unwrap().len(), 9);
}
