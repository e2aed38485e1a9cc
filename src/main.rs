fn main() -> std::process::ExitCode {
    meter2mqtt::cli::main()
}
