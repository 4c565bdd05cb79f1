fn main() {
    std::process::exit(syft_reviewer::cli::main());
}
