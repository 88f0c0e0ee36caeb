//! Developer tasks for apigw-operator: `cargo xtask stack up|down|status`, `cargo xtask demo`,
//! `cargo xtask test`. Everything the project needs on a fresh machine is built or installed from here.

mod bench;
mod chaos;
mod demo;
mod deny;
mod image;
mod node;
mod paths;
mod proc;
mod release_check;
mod stack;
mod test;
mod test_binaries;
mod tools;

use anyhow::{Result, bail};

/// One command of the xtask. `Task::ALL` is the only way from the command line to a task, so a task
/// missing from it cannot be run, and every task in it has a usage that `--help` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    StackUp,
    StackDown,
    StackStatus,
    StackLoadImage,
    Tools,
    Demo,
    Test,
    ReleaseCheck,
    Bench,
    Chaos,
    Image,
}

impl Task {
    const ALL: [Task; 11] = [
        Task::StackUp,
        Task::StackDown,
        Task::StackStatus,
        Task::StackLoadImage,
        Task::Tools,
        Task::Demo,
        Task::Test,
        Task::ReleaseCheck,
        Task::Bench,
        Task::Chaos,
        Task::Image,
    ];

    /// The words that name the task on the command line.
    fn words(self) -> &'static [&'static str] {
        match self {
            Task::StackUp => &["stack", "up"],
            Task::StackDown => &["stack", "down"],
            Task::StackStatus => &["stack", "status"],
            Task::StackLoadImage => &["stack", "load-image"],
            Task::Tools => &["tools"],
            Task::Demo => &["demo"],
            Task::Test => &["test"],
            Task::ReleaseCheck => &["release-check"],
            Task::Bench => &["bench"],
            Task::Chaos => &["chaos"],
            Task::Image => &["image"],
        }
    }

    /// The task's entry in the command list: its synopsis, what it does and its options.
    fn usage(self) -> &'static str {
        match self {
            Task::StackUp => {
                "  stack up       build the tools if needed, start etcd, kube-apiserver, kube-controller-manager and moto
                 [--node]         also a node: containerd, kubelet and kube-scheduler (Pods run for real);
                                  added to a stack already up without one"
            }
            Task::StackDown => {
                "  stack down     stop exactly the processes `stack up` started and remove their data
                 [--node]         only the node, and everything it made; the control plane keeps running"
            }
            Task::StackStatus => "  stack status   say what runs",
            Task::StackLoadImage => {
                "  stack load-image IMAGE [NAME...]
                 put an image of podman's local storage on the node (`stack up --node`), under its own
                 name or under each NAME, for Pods with imagePullPolicy: Never"
            }
            Task::Tools => {
                "  tools          build (or find cached) the Go tools and the moto virtualenv, print versions"
            }
            Task::Demo => {
                "  demo           stack up, run the operator, apply every example, wait for Ready, show what AWS holds"
            }
            Task::Test => {
                "  test [-- ARGS] fmt check, cargo deny, clippy -D warnings, unit, integration and end-to-end tests on
                 the real stack, side by side in $APIGW_TEST_LANES lanes (default 3; the chaos storm
                 alone at the end; logs in target/test-logs/); ARGS go to one `cargo test --workspace`
                 instead (e.g. a test name filter)
                 advisory database: $APIGW_ADVISORY_DB (default ../shared/reference/advisory-db);
                 and release-check"
            }
            Task::ReleaseCheck => {
                "  release-check  build with --release and check that the binary carries no test hook (failpoints)"
            }
            Task::Bench => bench::USAGE,
            Task::Image => image::USAGE,
            Task::Chaos => {
                "  chaos          the full storm (kills, AWS faults, control-plane restarts, moto wiped) and its table
                 [--rounds N]     rounds of the storm (default 1)
                 [--resources M]  resources per round (default 100)
                 [--seed S]       seed of the storm's random choices (default the current time)
                 [--quota R/B]    API Gateway's quota the proxy keeps per account (default 10/40; off)"
            }
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Invocation<'a> {
    /// Run a task with the arguments that follow its name.
    Run(Task, &'a [&'a str]),
    /// Print this text and exit successfully (`--help`).
    Help(String),
}

/// The whole command list, as `cargo xtask` alone and `cargo xtask --help` print it.
fn usage_all() -> String {
    usage_of(&Task::ALL)
}

/// The usage of these tasks: one task's own (`cargo xtask bench --help`), or a list with a header.
fn usage_of(tasks: &[Task]) -> String {
    if let [task] = tasks {
        return format!(
            "usage: cargo xtask {}{}\n\n{}\n",
            task.words().join(" "),
            match task {
                Task::Bench | Task::Chaos | Task::Image => " [options]",
                Task::Test => " [-- ARGS]",
                Task::StackUp | Task::StackDown => " [--node]",
                Task::StackLoadImage => " IMAGE [NAME...]",
                _ => "",
            },
            task.usage()
        );
    }
    let mut text = String::from(
        "usage: cargo xtask <command> [options]   (`cargo xtask <command> --help` for one)\n\ncommands:\n",
    );
    for task in tasks {
        text.push_str(task.usage());
        text.push('\n');
    }
    text
}

fn is_help(arg: &str) -> bool {
    matches!(arg, "--help" | "-h")
}

/// Reads the command line (without the program name). Pure, so every command's `--help` is unit-tested.
fn parse<'a>(args: &'a [&'a str]) -> Result<Invocation<'a>> {
    if args.is_empty() {
        bail!("{}", usage_all());
    }
    if args.len() == 1 && (is_help(args[0]) || args[0] == "help") {
        return Ok(Invocation::Help(usage_all()));
    }
    let task = Task::ALL
        .into_iter()
        .find(|t| args.len() >= t.words().len() && args[..t.words().len()] == *t.words());
    let Some(task) = task else {
        // `cargo xtask stack --help` (or `stack` alone): the tasks whose names start with these words.
        let (words, help) = match args.split_last() {
            Some((last, words)) if is_help(last) => (words, true),
            _ => (args, false),
        };
        let group: Vec<Task> = Task::ALL
            .into_iter()
            .filter(|t| t.words().starts_with(words))
            .collect();
        if group.is_empty() {
            bail!("unknown command `{}`\n{}", args.join(" "), usage_all());
        }
        if help {
            return Ok(Invocation::Help(usage_of(&group)));
        }
        bail!("`{}` needs more\n{}", words.join(" "), usage_of(&group));
    };
    let rest = &args[task.words().len()..];
    // `--help` anywhere among the task's own options; after `--` it belongs to the command run.
    if rest.iter().take_while(|a| **a != "--").any(|a| is_help(a)) {
        return Ok(Invocation::Help(usage_of(&[task])));
    }
    let takes_options = match task {
        Task::Bench | Task::Chaos | Task::Image => true,
        Task::Test => rest.first().is_none_or(|a| *a == "--"),
        Task::StackUp | Task::StackDown => rest.is_empty() || rest == ["--node"],
        Task::StackLoadImage => !rest.is_empty(),
        _ => rest.is_empty(),
    };
    if !takes_options {
        bail!(
            "unexpected argument `{}` for `{}`\n{}",
            rest.join(" "),
            task.words().join(" "),
            usage_of(&[task])
        );
    }
    Ok(Invocation::Run(task, rest))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match parse(&args)? {
        Invocation::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Invocation::Run(task, rest) => match task {
            Task::StackUp if rest == ["--node"] => stack::up_with_node().map(|_| ()),
            Task::StackUp => stack::up().map(|_| ()),
            Task::StackDown if rest == ["--node"] => node::down(),
            Task::StackDown => stack::down(),
            Task::StackStatus => stack::status(),
            Task::StackLoadImage => node::load_image(rest[0], &rest[1..]),
            Task::Tools => tools::ensure_all().map(|t| t.print_versions()),
            Task::Demo => demo::run(),
            Task::Test => test::run_all(rest.get(1..).unwrap_or_default()),
            Task::ReleaseCheck => release_check::run_check(),
            Task::Bench => bench::run_cmd(rest),
            Task::Chaos => chaos::run(rest),
            Task::Image => image::run_cmd(rest),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&'static str]) -> Invocation<'static> {
        let args: &'static [&'static str] = Vec::leak(args.to_vec());
        parse(args).unwrap_or_else(|e| panic!("{args:?} is refused: {e:#}"))
    }

    #[test]
    fn every_command_prints_its_own_usage_with_help() {
        for task in Task::ALL {
            for flag in ["--help", "-h"] {
                let mut args = task.words().to_vec();
                args.push(flag);
                let Invocation::Help(text) = parsed(&args) else {
                    panic!("{args:?} does not ask for help");
                };
                assert!(
                    text.contains(task.usage()),
                    "{args:?} prints\n{text}\nwithout the usage of {task:?}"
                );
                let others: Vec<Task> = Task::ALL.into_iter().filter(|t| *t != task).collect();
                for other in others {
                    assert!(
                        !text.contains(other.usage()),
                        "{args:?} prints the usage of {other:?} too"
                    );
                }
            }
        }
    }

    #[test]
    fn help_is_found_among_a_commands_options_but_not_after_a_double_dash() {
        assert_eq!(
            parsed(&["bench", "--resources", "10", "--help"]),
            Invocation::Help(usage_of(&[Task::Bench]))
        );
        assert_eq!(
            parsed(&["chaos", "--seed", "3", "-h"]),
            Invocation::Help(usage_of(&[Task::Chaos]))
        );
        assert_eq!(
            parsed(&["test", "--", "--help"]),
            Invocation::Run(Task::Test, &["--", "--help"])
        );
    }

    #[test]
    fn every_usage_names_its_command() {
        for task in Task::ALL {
            let name = task.words().join(" ");
            assert!(
                task.usage().trim_start().starts_with(&name),
                "the usage of {task:?} starts with {name:?}:\n{}",
                task.usage()
            );
        }
    }

    #[test]
    fn the_bare_command_and_help_list_every_command() {
        let listing = parse(&[]).unwrap_err().to_string();
        for args in [&["--help"][..], &["-h"], &["help"]] {
            assert_eq!(parsed(args), Invocation::Help(usage_all()));
        }
        for task in Task::ALL {
            assert!(listing.contains(task.usage()), "{task:?} is not listed");
        }
    }

    #[test]
    fn a_group_word_with_help_lists_the_group() {
        assert_eq!(
            parsed(&["stack", "--help"]),
            Invocation::Help(usage_of(&[
                Task::StackUp,
                Task::StackDown,
                Task::StackStatus,
                Task::StackLoadImage
            ]))
        );
        assert!(parse(&["stack"]).is_err());
    }

    #[test]
    fn commands_run_with_their_arguments_and_refuse_strays() {
        assert_eq!(
            parsed(&["stack", "up"]),
            Invocation::Run(Task::StackUp, &[])
        );
        assert_eq!(parsed(&["test"]), Invocation::Run(Task::Test, &[]));
        assert_eq!(
            parsed(&["test", "--", "crd_sync"]),
            Invocation::Run(Task::Test, &["--", "crd_sync"])
        );
        assert_eq!(
            parsed(&["bench", "--only", "ours"]),
            Invocation::Run(Task::Bench, &["--only", "ours"])
        );
        assert!(parse(&["demo", "now"]).is_err());
        assert!(parse(&["test", "crd_sync"]).is_err());
        assert!(parse(&["stack", "up", "--fast"]).is_err());
        assert_eq!(
            parsed(&["stack", "up", "--node"]),
            Invocation::Run(Task::StackUp, &["--node"])
        );
        assert_eq!(
            parsed(&["stack", "down", "--node"]),
            Invocation::Run(Task::StackDown, &["--node"])
        );
        assert!(parse(&["stack", "status", "--node"]).is_err());
        assert!(parse(&["nope"]).is_err());
    }
}
