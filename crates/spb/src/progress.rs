//! Progress bars: drawn on stderr only when both stdout and stderr are terminals (issue 16:
//! silent when the output goes to a pipe or a file), so scripts and logs never see them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes: stderr when stdout and stderr are terminals, nowhere otherwise.
pub fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
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

/// A bar of `len` steps drawn with `template` (hidden unless [`target`] draws).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(style(template));
    pb
}
