fn main() {
    std::process::exit(stowage::cli::run());
}
