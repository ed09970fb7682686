//! The command line (docs/language.md section 5): which program to run, how,
//! and what exit status it ends with.

use std::io::{IsTerminal, Read};
use std::path::Path;

use clap::{CommandFactory, Parser};

use crate::eval::{Ctrl, DEFAULT_MAX_TASKS, Ends, Interp, Process, Recording, Watch, deadlocked, finish_tasks};
use crate::observe::explore::runner::{self, Exploring};
use crate::observe::explore::strategy::{Plan, Strategy};
use crate::observe::{explore, race};
use crate::report::{Part, Report, Source};
use crate::resolve::modules;
use crate::runtime::output;
use crate::sync::{board, history};
use crate::{resolve, signals, syntax};

/// Exit statuses.
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;
/// 128 + SIGTERM.
pub const EXIT_TERMINATED: i32 = 143;

#[derive(Parser, Debug)]
#[command(
    name = "concsh",
    version,
    about = "Run concsh scripts: real processes, real threads, one language for both.",
    after_help = "Without a script, concsh opens an interactive prompt, or reads the program from standard input when it is not a terminal.\n\n`concsh worker redis://HOST:PORT` runs a cluster worker; `concsh completions bash|zsh|fish` prints shell completions; `concsh man` prints the man page."
)]
pub struct Cli {
    /// Run CODE instead of a script file.
    #[arg(short = 'c', value_name = "CODE")]
    code: Option<String>,

    /// Parse and resolve only: report every error, run nothing.
    #[arg(long)]
    check: bool,

    /// Also write a trace of the run (Chrome trace event JSON, for
    /// Perfetto or chrome://tracing) to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,

    /// Draw each task's timeline on stderr when the run ends.
    #[arg(long)]
    timeline: bool,

    /// Colour in reports and timelines: by default when stderr is a
    /// terminal and NO_COLOR is not set (CLICOLOR_FORCE forces it).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = crate::runtime::color::Choice::Auto)]
    color: crate::runtime::color::Choice,

    /// Print on stderr, when the run ends, how much shared memory (queues,
    /// locks, items, shared values) is in use and the most that was.
    #[arg(long)]
    stats: bool,

    /// Report data races: two tasks touching the same data, one writing,
    /// with nothing ordering them. The run exits with 66 if it found any.
    #[arg(long)]
    race: bool,

    /// Run the script under up to N schedules (default 1000), one task at
    /// a time in orders chosen on purpose; stop at the first that fails
    /// and write it down for --replay.
    #[arg(long, value_name = "N", conflicts_with = "replay")]
    explore: Option<u64>,

    /// One controlled run from seed S (decimal or 0x hex): the same seed,
    /// the same output. With --explore, the seed its schedules come from.
    #[arg(long, value_name = "S", value_parser = parse_seed, conflicts_with = "replay")]
    seed: Option<u64>,

    /// How --explore and --seed choose who runs next: random, pct:D or
    /// pct:D:K (default for --explore: random, pct:2 and pct:3 in turn).
    #[arg(long, value_name = "STRATEGY", value_parser = Strategy::parse, conflicts_with = "replay")]
    strategy: Option<Strategy>,

    /// Run again a schedule that --explore wrote (the script is named in it).
    #[arg(long, value_name = "FILE")]
    replay: Option<std::path::PathBuf>,

    /// Most scheduling points in one controlled run: past it, a livelock.
    #[arg(long, value_name = "N", default_value_t = explore::STEP_LIMIT)]
    max_steps: u64,

    /// Where --explore writes a failing schedule and its trace.
    #[arg(long, value_name = "DIR", default_value = ".concsh/failures")]
    failures: std::path::PathBuf,

    /// Run every process pool on the cluster at URL (redis://HOST:PORT),
    /// whose workers are `concsh worker` processes; CONCSH_CLUSTER too.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,

    /// Allow a cluster beyond this machine that has no password.
    #[arg(long)]
    insecure: bool,

    /// Most tasks (threads and processes) alive at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TASKS as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_tasks: u32,

    /// The script (`-` reads it from standard input), then its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "SCRIPT [ARGS]")]
    args: Vec<String>,
}

/// `concsh worker URL`: a cluster's worker (see `cluster::worker`).
#[derive(Parser, Debug)]
#[command(name = "concsh worker", about = "Run tasks of cluster pools, from the Redis at URL.")]
struct WorkerCli {
    /// The cluster's Redis: redis://HOST:PORT, or redis://:PASSWORD@HOST:PORT.
    url: String,
    /// Tasks run at once (forked executors); the default is the cores.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// The worker's name in the cluster (default: host and pid).
    #[arg(long, value_name = "W")]
    name: Option<String>,
    /// Allow a cluster beyond this machine that has no password.
    #[arg(long)]
    insecure: bool,
}

/// `concsh worker ...`: runs on a large stack, with the signals it
/// handles blocked in every thread (it takes them with `sigwait`).
fn worker_command(argv: &[std::ffi::OsString]) -> Option<i32> {
    if argv.get(1)?.to_str()? != "worker" {
        return None;
    }
    let cli = match WorkerCli::try_parse_from(argv[1..].iter()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Some(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "worker".into());
    let options = crate::cluster::worker::Options {
        url: cli.url,
        jobs: cli.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize),
        name: cli.name.unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        insecure: cli.insecure,
    };
    let mut signals = nix::sys::signal::SigSet::empty();
    for signal in
        [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGCHLD]
    {
        signals.add(signal);
    }
    let _ = signals.thread_block();
    let stack = crate::runtime::stack::main_size();
    let thread = std::thread::Builder::new().name("concsh-worker".into()).stack_size(stack);
    Some(match thread.spawn(move || crate::cluster::worker::run(&options)).map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => EXIT_ERROR,
    })
}

/// `concsh completions SHELL` and `concsh man`: what a packager installs,
/// made from the same definition as the options. **Choice:** these words
/// first are commands; a script of that name runs as `./completions`.
fn tool_command(argv: &[std::ffi::OsString]) -> Option<i32> {
    let word = argv.get(1)?.to_str()?;
    let mut command = Cli::command();
    // Made whole first: a reader that stops early (`| head`) is no error.
    let mut text: Vec<u8> = Vec::new();
    match word {
        "completions" => {
            let shell = argv.get(2).and_then(|s| s.to_str()).map(str::parse::<clap_complete::Shell>);
            let Some(Ok(shell)) = shell.filter(|_| argv.len() == 3) else {
                let shells = "bash, zsh, fish, elvish or powershell";
                output::report(&format!("concsh: usage: concsh completions SHELL (SHELL is {shells})\n"));
                return Some(EXIT_USAGE);
            };
            clap_complete::generate(shell, &mut command, "concsh", &mut text);
        }
        "man" if argv.len() == 2 => {
            if let Err(e) = clap_mangen::Man::new(command).render(&mut text) {
                output::report(&format!("concsh: cannot make the man page: {}\n", plain_io(&e)));
                return Some(EXIT_ERROR);
            }
        }
        _ => return None,
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout(), &text);
    Some(0)
}

/// Runs the command line and gives the process exit status.
pub fn main() -> i32 {
    // Before any thread exists: every thread inherits the mask.
    signals::route_children_signals();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = tool_command(&argv).or_else(|| worker_command(&argv)) {
        return code;
    }
    let (ours, theirs) = split_after_code(explore_count(argv));
    let cli = match Cli::try_parse_from(ours) {
        Ok(mut cli) => {
            cli.args.extend(theirs);
            crate::runtime::color::choose(cli.color);
            cli
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    // The explorer takes Ctrl-C itself, in every thread (see `runner`).
    if cli.explore.is_some() {
        runner::take_ending_signals();
    }
    // Parsing, resolving and evaluating recurse; they get a big stack.
    let stack = crate::runtime::stack::main_size();
    let worker = std::thread::Builder::new().name("concsh-main".into()).stack_size(stack).spawn(move || run(cli));
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        Err(e) => {
            let limit = match crate::runtime::stack::address_limit() {
                Some(limit) => format!(" within the address-space limit of {} MiB (ulimit -v)", limit >> 20),
                None => String::new(),
            };
            output::report(&format!("concsh: cannot start: no room for a {} MiB stack{limit}: {e}\n", stack >> 20));
            EXIT_ERROR
        }
        _ => {
            output::report("concsh: internal error (a bug in concsh); please report it with the script\n");
            70
        }
    }
}

fn run(cli: Cli) -> i32 {
    // Options go before the script; a word like `--timelin` there is a
    // mistyped option, not a script (`./--name` runs a file of that name).
    if let Some(word) = cli.args.first().filter(|a| cli.code.is_none() && a.starts_with("--")) {
        output::report(&unknown_option(word));
        return EXIT_USAGE;
    }
    if cli.check && cli.code.is_none() && cli.args.len() > 1 {
        return check_all(&cli.args);
    }
    let controlled = cli.explore.is_some() || cli.seed.is_some() || cli.replay.is_some();
    if controlled && cli.check {
        output::report("concsh: --check runs nothing: it cannot go with --explore, --seed or --replay\n");
        return EXIT_USAGE;
    }
    if cli.timeline && cli.explore.is_some() {
        output::report("concsh: --timeline draws one run: use it with --seed or --replay, not --explore\n");
        return EXIT_USAGE;
    }
    if cli.strategy.is_some() && cli.explore.is_none() && cli.seed.is_none() {
        output::report("concsh: --strategy goes with --explore or --seed\n");
        return EXIT_USAGE;
    }
    let cluster = cli.cluster.clone().or_else(|| std::env::var("CONCSH_CLUSTER").ok().filter(|c| !c.is_empty()));
    if let Some(url) = cluster {
        if let Err(message) = crate::cluster::check_url(&url, cli.insecure) {
            output::report(&format!("concsh: --cluster: {message}\n(--insecure runs it all the same)\n"));
            return EXIT_USAGE;
        }
        crate::cluster::bridge::set_default(url, cli.insecure);
    }
    let options = Options {
        check_only: cli.check,
        max_tasks: cli.max_tasks as usize,
        trace: cli.trace.clone(),
        timeline: cli.timeline,
        stats: cli.stats,
        race: cli.race,
    };
    if let Some(file) = &cli.replay {
        if cli.code.is_some() || !cli.args.is_empty() {
            output::report("concsh: --replay runs the script its schedule names: give no script\n");
            return EXIT_USAGE;
        }
        return runner::replay(file, &options, cli.max_steps);
    }
    let mut args = cli.args.into_iter();
    let (source, script_args) = match cli.code {
        Some(code) => (Source::new("-c", &code), args.collect()),
        None => {
            let source = match args.next() {
                Some(path) if path != "-" => read_script(&path),
                // `-` reads the program from stdin, a terminal included
                // (ended by Ctrl-D), as `python -` does.
                Some(_) => read_stdin(),
                None if controlled => {
                    output::report("concsh: --explore and --seed need a script (or -c CODE)\n");
                    return EXIT_USAGE;
                }
                None if std::io::stdin().is_terminal() && !cli.check => return crate::repl::run(cli.race),
                None if std::io::stdin().is_terminal() => {
                    output::report("concsh: --check needs a script (usage: concsh --check SCRIPT.conc)\n");
                    return EXIT_USAGE;
                }
                None => read_stdin(),
            };
            match source {
                Ok(source) => (source, args.collect()),
                Err(message) => {
                    output::report(&format!("concsh: {message}\n"));
                    return EXIT_USAGE;
                }
            }
        }
    };
    if cli.explore.is_none() && cli.seed.is_none() {
        return run_source(&source, script_args, &options);
    }
    // Parsed once: errors are told once, not once per schedule.
    let (program, source) = match compile(&source) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let script = runner::Script { program: &program, source: &source, args: script_args, options: &options };
    if let Some(schedules) = cli.explore {
        let how = Exploring {
            schedules,
            seed: cli.seed,
            strategy: cli.strategy,
            limit: cli.max_steps,
            failures: cli.failures,
        };
        return runner::explore(&script, &how);
    }
    let Some(table) = explore::baton::Table::map() else {
        output::report("concsh: --seed: the kernel refused the scheduler's shared memory\n");
        return EXIT_ERROR;
    };
    let plan = Plan { strategy: cli.strategy.unwrap_or(Strategy::Random), replay: None };
    runner::run_controlled(table, &script, cli.seed.unwrap_or_default(), plan, cli.max_steps)
}

/// `--explore` takes an optional count: `--explore 50 x.conc` and
/// `--explore x.conc` both read as meant (clap alone would take the
/// script for the count).
fn explore_count(mut argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let at = argv.iter().take_while(|w| *w != "--").position(|w| w == "--explore");
    if let Some(at) = at {
        let count = argv.get(at + 1).and_then(|w| w.to_str()).filter(|w| w.parse::<u64>().is_ok()).map(str::to_string);
        match count {
            Some(count) => {
                argv[at] = format!("--explore={count}").into();
                argv.remove(at + 1);
            }
            None => argv[at] = format!("--explore={}", runner::SCHEDULES).into(),
        }
    }
    argv
}

fn parse_seed(text: &str) -> Result<u64, String> {
    explore::record::parse_seed(text).ok_or_else(|| format!("`{text}` is not a seed (a number, or hex after 0x)"))
}

/// Splits the command line after `-c CODE`: what follows is the script's
/// own, `--help` included, as it is after a script's path (clap would
/// otherwise read `concsh -c CODE --help` as concsh's `--help`).
fn split_after_code(argv: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, Vec<String>) {
    let mut at = 1;
    while let Some(word) = argv.get(at).and_then(|w| w.to_str()) {
        at += match word {
            "-c" => 2,
            // An option's value is not a `-c`.
            "--trace" | "--max-tasks" | "--color" | "--seed" | "--strategy" | "--replay" | "--max-steps"
            | "--failures" => 2,
            _ if word.starts_with('-') && word != "-" && word != "--" => 1,
            // The script (or `--`): clap already gives the rest to it.
            _ => return (argv, Vec::new()),
        };
        if word == "-c" {
            let at = at.min(argv.len());
            let theirs = argv[at..].iter().map(|w| w.to_string_lossy().into_owned()).collect();
            return (argv[..at].to_vec(), theirs);
        }
    }
    (argv, Vec::new())
}

/// The report for `--word` where the script goes, as clap words its own.
fn unknown_option(word: &str) -> String {
    let name = word.split('=').next().unwrap_or(word);
    let known =
        Cli::command().get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect::<Vec<_>>();
    let near = known
        .iter()
        .min_by_key(|k| strsim::damerau_levenshtein(name, k))
        .filter(|k| strsim::damerau_levenshtein(name, k) <= 3);
    let tip = near.map_or(String::new(), |k| format!("\n  tip: a similar argument exists: '{k}'\n"));
    format!(
        "error: unexpected argument '{word}' found\n{tip}\nUsage: concsh [OPTIONS] [SCRIPT [ARGS]]...\n\n\
         For more information, try '--help'.\n"
    )
}

/// `--check` of several scripts: each is checked and reported; the status
/// is the worst of them.
fn check_all(paths: &[String]) -> i32 {
    let options = Options { check_only: true, max_tasks: 1, trace: None, timeline: false, stats: false, race: false };
    let mut worst = 0;
    for path in paths {
        let code = match read_script(path) {
            Ok(source) => run_source(&source, Vec::new(), &options),
            Err(message) => {
                output::report(&format!("concsh: {message}\n"));
                EXIT_USAGE
            }
        };
        worst = worst.max(code);
    }
    worst
}

/// How to run a program.
#[derive(Clone)]
pub struct Options {
    /// Parse and resolve only.
    pub check_only: bool,
    pub max_tasks: usize,
    /// `--trace FILE`.
    pub trace: Option<std::path::PathBuf>,
    pub timeline: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--race`.
    pub race: bool,
}

/// The largest script read: far past any real one, and it stops a read of
/// `/dev/zero` or an endless pipe before memory runs out.
const MAX_SCRIPT: u64 = 64 << 20;

pub(crate) fn read_script(path: &str) -> Result<Source, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {}", plain_io(&e)))?;
    let bytes = read_limited(file, path)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("{path} is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))?;
    Ok(Source::read_from(path, &text))
}

fn read_stdin() -> Result<Source, String> {
    let bytes = read_limited(std::io::stdin(), "standard input")?;
    let text = String::from_utf8(bytes).map_err(|_| "standard input is not UTF-8 text".to_string())?;
    Ok(Source::new("<stdin>", &text))
}

/// Reads all of `from`, refusing more than [`MAX_SCRIPT`] bytes.
fn read_limited(from: impl Read, name: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    from.take(MAX_SCRIPT + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {name}: {}", plain_io(&e)))?;
    if bytes.len() as u64 > MAX_SCRIPT {
        return Err(format!("{name} is too large to be a script (more than {} MiB)", MAX_SCRIPT >> 20));
    }
    Ok(bytes)
}

fn plain_io(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

/// Parses, resolves and (unless `check_only`) runs one program.
pub fn run_source(source: &Source, args: Vec<String>, options: &Options) -> i32 {
    let (program, source) = match compile(source) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    if options.check_only {
        return 0;
    }
    run_program(&program, &source, args, options)
}

/// Parses a script, loads the modules it imports and resolves them all:
/// the program, and its source with every module's text. Errors are
/// reported (the exit status is the `Err`).
pub fn compile(source: &Source) -> Result<(resolve::ir::Program, Source), i32> {
    let ast = match syntax::parse(&source.text) {
        Ok(ast) => ast,
        Err(errors) => {
            let reports: Vec<Report> = errors.iter().map(|e| Report::syntax(source, e)).collect();
            return Err(report_all(&reports));
        }
    };
    let (dir, path) = match &source.file {
        Some(file) => {
            (file.parent().map_or_else(Default::default, Path::to_path_buf), std::fs::canonicalize(file).ok())
        }
        None => (std::path::PathBuf::from("."), None),
    };
    let main_part = Part { start: 0, name: source.name.clone() };
    let mut text = modules::Text { text: source.text.to_string(), parts: vec![main_part] };
    let mut globals = resolve::Globals::default();
    let first_id = resolve::next_function_ids();
    let loaded = modules::load(ast, &dir, path, &source.name, &mut text, &globals);
    // A script that imports nothing keeps a source of one part.
    let source = match text.parts.len() {
        1 => source.clone(),
        _ => source.parted(&text.text, text.parts),
    };
    let units = loaded.map_err(|errors| {
        let reports: Vec<Report> = errors.iter().map(|e| e.report(&source)).collect();
        report_all(&reports)
    })?;
    match resolve::resolve_with(&units, &mut globals) {
        Ok(program) => {
            crate::cluster::program::remember(&units, &source, first_id);
            Ok((program, source))
        }
        Err(errors) => {
            let reports: Vec<Report> = errors.iter().map(|e| Report::resolve(&source, e)).collect();
            Err(report_all(&reports))
        }
    }
}

/// Runs a resolved program: the exit status.
pub fn run_program(program: &resolve::ir::Program, source: &Source, args: Vec<String>, options: &Options) -> i32 {
    // A trace that cannot be written is found before the run, not after.
    if let Some(path) = &options.trace
        && let Err(e) = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)
    {
        output::report(&format!("concsh: cannot write the trace {}: {}\n", path.display(), plain_io(&e)));
        return EXIT_USAGE;
    }
    let process = Process::new(program, source.clone(), args, options.max_tasks);
    if options.race && !race::enable() {
        output::report("concsh: --race: no room in the shared memory region for the race detector\n");
        return EXIT_ERROR;
    }
    let recording = Recording::start(options.trace.clone(), options.timeline);
    let main_task = process.main_task();
    let listed = board::list_me(main_task.id, board::Owner::Process, &main_task.name);
    history::record(history::Event::TaskBegins { name: main_task.name.clone(), process: true });
    let listener = signals::Listener::start(process.clone());
    let watch = Watch::start(process.clone(), Ends::Run);
    // A controlled run's first task holds the baton from the start.
    // The table is empty: the first task always has room.
    let ticket = explore::register(&main_task.name, nix::unistd::getpid().as_raw()).unwrap_or_default();
    main_task.schedule.store(ticket.map_or(0, explore::Ticket::to_bits), std::sync::atomic::Ordering::SeqCst);
    explore::begin(ticket, None);
    process.gate.enter();
    let tables = process.tables();
    race::begin(None, &format!("process {}", main_task.name));
    let result = Interp::new(&process, &tables).run_main(&program.main);
    process.gate.leave();
    // An error in the main task is reported at once; the threads it
    // started still run to their end, as in Python.
    let mut code = match result {
        Ok(_) => 0,
        Err(Ctrl::Exit(code)) => {
            // The other tasks are not waited for: `exit` ends the run now.
            process.request_exit(code);
            code
        }
        Err(Ctrl::Error(error)) => {
            output::report(&Report::runtime(source, &error).render());
            EXIT_ERROR
        }
        Err(_) => EXIT_INTERRUPTED,
    };
    finish_tasks(&process, process.ending());
    explore::end();
    if options.stats {
        output::report(&stats());
    }
    history::record(history::Event::TaskEnds);
    if let Some(recording) = recording
        && !recording.finish(&process)
        && code == 0
    {
        code = EXIT_ERROR;
    }
    drop(watch);
    drop(listener);
    drop(listed);
    if let Some(exit) = *process.exit_request.lock() {
        code = exit;
    }
    let races = race::found();
    if races > 0 {
        output::report(&format!("concsh: {races} data race(s) found\n"));
        if code == 0 {
            code = race::EXIT_RACE;
        }
    }
    if deadlocked() {
        code = EXIT_ERROR;
    } else if signals::interrupted() {
        output::report("concsh: interrupted\n");
        code = EXIT_INTERRUPTED;
    } else if signals::terminated() {
        code = EXIT_TERMINATED;
    }
    code
}

/// What `--stats` prints: the shared region's use, once every task ended.
fn stats() -> String {
    let (now, most) = crate::sync::shm::region().map_or((0, 0), |r| r.usage());
    let kib = |bytes: u64| bytes.div_ceil(1024);
    format!("concsh: shared memory: {} KiB in use, {} KiB at most\n", kib(now), kib(most))
}

/// Prints every report, then a count; nothing ran.
fn report_all(reports: &[Report]) -> i32 {
    let mut text = String::new();
    for report in reports {
        text.push_str(&report.render());
    }
    if reports.len() > 1 {
        text.push_str(&format!("\n{} errors found; nothing was run.\n", reports.len()));
    }
    output::report(&text);
    EXIT_USAGE
}
