//! The container image (README "Docker"), without a container engine (none is reachable here):
//! the Dockerfile's build stage is replayed in an empty folder holding exactly what its `COPY`
//! instructions copy (less `.dockerignore`), with its cargo command, so a file the build needs
//! but the Dockerfile forgets (a workspace member, `migrations/`, a file an `include_str!` reads)
//! fails here; and the runtime stage's user, entrypoint, command and port are checked against
//! the Helm chart's values (`deploy/helm/user-otp/values.yaml`).
//!
//! The one difference from `docker build`: the replay builds the dev profile, in the suite's
//! own target directory, not `--release` (a release build of every dependency would double the
//! suite's time; what a missing file breaks, it breaks in both profiles).

use std::path::{Path, PathBuf};
use std::process::Command;

use dockerfile_parser::{Dockerfile, Instruction, ShellOrExecExpr, Stage};
use yaml_rust2::{Yaml, YamlLoader};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(Path::new(REPO).join("Dockerfile")).expect("Dockerfile");
    Dockerfile::parse(&text).expect("the Dockerfile parses")
}

fn stage<'a>(dockerfile: &'a Dockerfile, name: &str) -> Stage<'a> {
    dockerfile
        .iter_stages()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("a stage named {name}"))
}

/// The arguments of the stage's `name` instructions (`USER`, `EXPOSE`, `WORKDIR`, …).
fn misc(stage: &Stage<'_>, name: &str) -> Vec<String> {
    stage
        .instructions
        .iter()
        .filter_map(|i| i.as_misc())
        .filter(|m| m.instruction.content.eq_ignore_ascii_case(name))
        .map(|m| m.arguments.to_string().trim().to_owned())
        .collect()
}

fn exec_form(expr: &ShellOrExecExpr) -> Vec<String> {
    match expr {
        ShellOrExecExpr::Exec(array) => array.elements.iter().map(|e| e.content.clone()).collect(),
        ShellOrExecExpr::Shell(shell) => {
            panic!("exec form expected (signals reach the service), got {shell}")
        }
    }
}

/// `.dockerignore`'s entries: plain paths from the context root (no patterns are used).
fn ignored() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(Path::new(REPO).join(".dockerignore")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            assert!(
                !l.contains(['*', '?', '[', '!']),
                "this replay understands plain paths only: {l}"
            );
            PathBuf::from(l.trim_start_matches("./").trim_end_matches('/'))
        })
        .collect()
}

/// Copies `from` (a file or a folder) to `to`, skipping `.dockerignore`'s paths.
fn copy(from: &Path, to: &Path, ignored: &[PathBuf]) {
    let relative = from.strip_prefix(REPO).expect("inside the repository");
    if ignored.iter().any(|i| relative.starts_with(i)) {
        return;
    }
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create a folder");
        for entry in std::fs::read_dir(from).expect("read a folder") {
            let entry = entry.expect("a folder entry");
            copy(&entry.path(), &to.join(entry.file_name()), ignored);
        }
    } else {
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("create a folder");
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// Values of the chart at `path` (`podSecurityContext.runAsUser`, …).
fn value<'a>(values: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.').fold(values, |node, key| &node[key])
}

#[test]
fn the_build_stage_builds_from_exactly_what_it_copies() {
    let dockerfile = dockerfile();
    let build = stage(&dockerfile, "build");
    let workdir = misc(&build, "WORKDIR");
    assert_eq!(workdir, ["/src"], "one WORKDIR, the copies' base");
    let context = std::env::temp_dir().join(format!("user-otp-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&context);
    std::fs::create_dir_all(&context).expect("an empty folder");
    let ignored = ignored();
    let mut commands = Vec::new();
    for instruction in &build.instructions {
        match instruction {
            Instruction::Copy(copy_instruction) => {
                assert!(
                    copy_instruction.flags.is_empty(),
                    "no --from/--chown in the build stage"
                );
                let destination = &copy_instruction.destination.content;
                let into_folder = destination.ends_with('/') || copy_instruction.sources.len() > 1;
                for source in &copy_instruction.sources {
                    let from = Path::new(REPO).join(&source.content);
                    assert!(
                        from.exists(),
                        "COPY {}: not in the repository",
                        source.content
                    );
                    let to = if into_folder {
                        context
                            .join(destination)
                            .join(from.file_name().expect("a file name"))
                    } else {
                        context.join(destination)
                    };
                    copy(&from, &to, &ignored);
                }
            }
            Instruction::Run(run) => {
                if let Some(shell) = run.as_shell() {
                    let text = shell.to_string();
                    if text.trim_start().starts_with("cargo ") {
                        commands.push(text.trim().to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        commands,
        ["cargo build --release --locked --bin user-otp"],
        "the command this test replays"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target"));
    let built = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--bin", "user-otp", "--quiet"])
        .current_dir(&context)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    let _ = std::fs::remove_dir_all(&context);
    assert!(
        built.status.success(),
        "the build stage fails with only what the Dockerfile copies:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
}

#[test]
fn the_runtime_stage_runs_as_the_chart_expects() {
    let dockerfile = dockerfile();
    let runtime = stage(&dockerfile, "runtime");
    let values = std::fs::read_to_string(Path::new(REPO).join("deploy/helm/user-otp/values.yaml"))
        .expect("values.yaml");
    let values = &YamlLoader::load_from_str(&values).expect("values.yaml parses")[0];
    let user = misc(&runtime, "USER");
    let (uid, gid) = user
        .last()
        .and_then(|u| u.split_once(':'))
        .expect("USER uid:gid");
    for context in ["podSecurityContext", "securityContext"] {
        assert_eq!(
            value(values, &format!("{context}.runAsUser"))
                .as_i64()
                .map(|u| u.to_string()),
            Some(uid.to_owned()),
            "{context}.runAsUser"
        );
        assert_eq!(
            value(values, &format!("{context}.runAsGroup"))
                .as_i64()
                .map(|g| g.to_string()),
            Some(gid.to_owned()),
            "{context}.runAsGroup"
        );
    }
    assert_eq!(
        value(values, "podSecurityContext.runAsNonRoot").as_bool(),
        Some(true)
    );
    let entrypoint = runtime
        .instructions
        .iter()
        .filter_map(|i| i.as_entrypoint())
        .next_back()
        .expect("an ENTRYPOINT");
    assert_eq!(
        exec_form(&entrypoint.expr),
        ["/usr/local/bin/user-otp"],
        "the chart passes only args (the role), never a command"
    );
    let cmd = runtime
        .instructions
        .iter()
        .filter_map(|i| i.as_cmd())
        .next_back()
        .expect("a CMD");
    assert_eq!(
        exec_form(&cmd.expr),
        [value(values, "role").as_str().expect("role")],
        "the image's default role is the chart's"
    );
    let exposed = misc(&runtime, "EXPOSE");
    assert_eq!(
        exposed,
        [value(values, "httpPort")
            .as_i64()
            .expect("httpPort")
            .to_string()],
        "EXPOSE is the chart's httpPort"
    );
    let copied: Vec<String> = runtime
        .instructions
        .iter()
        .filter_map(|i| i.as_copy())
        .map(|c| c.destination.content.clone())
        .collect();
    assert_eq!(copied, ["/usr/local/bin/user-otp"]);
}
