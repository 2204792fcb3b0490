fn main() {
    // A closed stdout (`mmsim ... | head`) is not a crash: stop quietly instead of panicking.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(2);
        }
        default(info);
    }));
    std::process::exit(mmsim::cli::main())
}
