//! `moon render -f spec.yaml`: the Kubernetes objects, printed, not applied.

use moon_core::kubernetes::{RenderOptions, render_spec_yaml};

use super::{Context, read_spec};
use crate::cli::RenderArgs;
use crate::exit::CliError;

/// Prints the YAML stream; needs no backend and no cluster. The image,
/// tolerations and node selector are the Kubernetes backend's, as the
/// environment and the global flags set them.
pub fn run(context: &Context, args: &RenderArgs) -> Result<(), CliError> {
    let text = read_spec(&args.file)?;
    let config = context.config()?;
    let kubernetes = config.kubernetes();
    let options = RenderOptions {
        image: kubernetes.image.clone(),
        anchor_uid: None,
        tolerations: kubernetes.tolerations.clone(),
        node_selector: kubernetes.node_selector.clone(),
        volumes: Vec::new(),
    };
    let yaml = render_spec_yaml(&text, &options)?;
    context.out.text(yaml.trim_end())?;
    Ok(())
}
