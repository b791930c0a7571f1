//! `Artifact`: what a manifest reference resolves to, one image or an index of images.

use crate::digest::Digest;

use super::attestation::single_attested_image;
use super::{
    Descriptor, Image, ImageError, ImageIndex, Index, Platform, parse_json, select_platform,
};

/// An image, or an index of images (one per platform).
// Artifacts are few and short-lived; boxing the common variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Artifact {
    Image(Image),
    Index(ImageIndex),
}

impl Artifact {
    /// The digest a registry would report for it.
    pub fn digest(&self) -> &Digest {
        match self {
            Artifact::Image(image) => image.digest(),
            Artifact::Index(index) => &index.digest,
        }
    }

    /// A descriptor of the top-level manifest or index.
    pub fn descriptor(&self) -> Descriptor {
        match self {
            Artifact::Image(image) => image.descriptor(),
            Artifact::Index(index) => Descriptor::new(
                &index.media_type,
                index.digest.clone(),
                index.raw.len() as u64,
            ),
        }
    }

    /// The artifact narrowed to `platform`: an index of one image and its
    /// attestations stays whole when that image matches (its attestations
    /// travel with it); any other index gives its matching image.
    pub fn for_platform(self, platform: &Platform) -> Result<Artifact, ImageError> {
        if let Artifact::Index(index) = &self
            && let Some(only) = single_attested_image(index)
        {
            let chosen = self.clone().into_image(platform)?;
            if chosen.digest() == only.digest() {
                return Ok(self);
            }
        }
        self.into_image(platform).map(Artifact::Image)
    }

    /// The image docker runs from it: an index of one image and its
    /// attestations gives that image, whatever its platform (as a plain
    /// image would); any other index gives its match for `platform`.
    pub fn runnable_image(&self, platform: &Platform) -> Result<Image, ImageError> {
        if let Artifact::Index(index) = self
            && let Some(only) = single_attested_image(index)
        {
            return Ok(only.clone());
        }
        self.clone().into_image(platform)
    }

    /// The image for `platform`: the image itself, or the index's match.
    pub fn into_image(self, platform: &Platform) -> Result<Image, ImageError> {
        match self {
            Artifact::Image(image) => Ok(image),
            Artifact::Index(index) => {
                let parsed: Index = parse_json("image index", &index.raw)?;
                let chosen = select_platform(&parsed.manifests, platform)?;
                index
                    .images
                    .into_iter()
                    .find(|i| i.digest() == &chosen.digest)
                    .ok_or_else(|| ImageError::Invalid {
                        what: "image index".into(),
                        problem: format!("child {} was not read", chosen.digest),
                    })
            }
        }
    }
}
