//! The quick version of `stylize fuzz`: 10^4 inputs per target, none may panic. The full run
//! (10^6 per target) is `cargo run --release -- fuzz --iterations 1000000`.

#[test]
fn no_input_panics_the_parsers_or_the_planner() {
    for target in stylize::fuzz::TARGETS {
        let report = stylize::fuzz::run(target, 10_000, 1).unwrap();
        assert!(report.panic.is_none(), "{report}");
        assert_eq!(report.inputs, 10_000, "{report}");
        // Not trivially refused: a good share of the inputs reaches the code behind the first check.
        assert!(report.deep >= 300, "{report}");
    }
    assert!(stylize::fuzz::run("nothing", 1, 0).is_err());
}
