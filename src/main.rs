//! `concsh`: parse the command line, run, exit with the script's status.

fn main() {
    std::process::exit(concsh::cli::main());
}
