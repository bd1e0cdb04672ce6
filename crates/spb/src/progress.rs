//! Progress bars: drawn on stderr only when stderr is a terminal, never into a pipe or a file.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes: stderr on a terminal, nowhere otherwise.
pub fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// The style of every bar: `template` with a 40-column `=>` bar.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar of `len` steps drawn with `template` (hidden unless stderr is a terminal).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(style(template));
    pb
}
