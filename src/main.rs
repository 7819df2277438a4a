//! The `dane-survey` binary: a thin front-end over [`dane_survey::operations`].

fn main() -> std::process::ExitCode {
    dane_survey::operations::main()
}
