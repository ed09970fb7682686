//! `concsh`: parse the command line, run, exit with the script's status.

fn main() {
    // Before any thread exists: registering for the barrier that revokes
    // a container's bias is then a flag, not a wait on every CPU.
    concsh::runtime::bias::prepare();
    std::process::exit(concsh::cli::main());
}
