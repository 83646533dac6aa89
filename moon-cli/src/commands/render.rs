//! `moon render -f spec.yaml`: the Kubernetes objects, printed, not applied.

use moon_core::kubernetes::{RenderOptions, parse_tolerations, render_spec_yaml};

use super::{Context, read_spec};
use crate::cli::RenderArgs;
use crate::exit::CliError;

/// Prints the YAML stream; needs no backend and no cluster.
pub fn run(context: &Context, args: &RenderArgs) -> Result<(), CliError> {
    let text = read_spec(&args.file)?;
    let tolerations = if args.tolerations.is_empty() {
        Vec::new()
    } else {
        parse_tolerations(&args.tolerations.join(","))?
    };
    let options = RenderOptions {
        image: args.image.clone(),
        anchor_uid: None,
        tolerations,
    };
    let yaml = render_spec_yaml(&text, &options)?;
    context.out.text(yaml.trim_end())?;
    Ok(())
}
