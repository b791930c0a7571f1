//! Tags of a repository: list them, find which point at a digest, and delete one tag alone where the registry allows it.
//!
//! `exports delete` needs these to keep to its own scope: a manifest is
//! shared by every tag that points at it, so deleting it by digest would
//! take other exports' tags with it.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LINK};
use serde::Deserialize;

use super::answer::{read_limited, status_error};
use super::auth::Scope;
use super::{Registry, RegistryError};
use crate::digest::Digest;
use crate::reference::ImageRef;

/// Tags asked for per page: distribution's largest page, so most repositories take one request.
const PAGE: usize = 1000;
/// A tag list page is a few kilobytes per hundred tags; refuse an endless one.
const MAX_PAGE_BYTES: u64 = 8 << 20;
/// Repositories with more tags than this are not walked: their tags are not checked one by one.
const MAX_TAGS: usize = 100_000;

/// Manifest media types a HEAD asks for, so the digest is the stored manifest's, not a converted one.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// What deleting a tag alone came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagDeletion {
    Deleted,
    /// The registry has no such tag.
    NotFound,
    /// The registry cannot delete a tag without its manifest (distribution 2.x, most before OCI 1.1).
    Unsupported,
}

impl Registry {
    /// Every tag of `reference`'s repository (I/O), following the `Link` pages.
    pub fn list_tags(&self, reference: &ImageRef) -> Result<Vec<String>, RegistryError> {
        let registry = &reference.registry;
        let repo = &reference.repository;
        let what = format!("the tag list of {repo}");
        let mut tags: Vec<String> = Vec::new();
        let mut next = format!("/v2/{repo}/tags/list?n={PAGE}");
        loop {
            let path = next.clone();
            let response = self.send(registry, &[Scope::pull(repo)], &what, &|c, base| {
                c.get(format!("{base}{path}"))
            })?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !response.status().is_success() {
                return Err(status_error(registry, &what, response));
            }
            let link = response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_page);
            let body = read_limited(response, MAX_PAGE_BYTES, registry, &what)?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    registry: registry.clone(),
                    problem: format!("{what} is not a tag list: {e}"),
                })?;
            let page = page.tags.unwrap_or_default();
            let empty = page.is_empty();
            tags.extend(page);
            match link {
                Some(link) if !empty && tags.len() < MAX_TAGS => next = link,
                _ => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// The digest `tag` of `reference`'s repository points at, or None when there is no such tag (I/O: one HEAD).
    pub fn tag_digest(
        &self,
        reference: &ImageRef,
        tag: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let registry = &reference.registry;
        let repo = &reference.repository;
        let what = format!("manifest {repo}:{tag}");
        let response = self.send(registry, &[Scope::pull(repo)], &what, &|c, base| {
            c.head(format!("{base}/v2/{repo}/manifests/{tag}"))
                .header(ACCEPT, MANIFEST_ACCEPT)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(registry, &what, response));
        }
        let header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<Digest>().ok());
        match header {
            Some(digest) => Ok(Some(digest)),
            // A registry that does not say the digest on HEAD: hash what a GET returns.
            None => match self.fetch_manifest(reference, tag) {
                Ok((bytes, _)) => Ok(Some(Digest::of(&bytes))),
                Err(RegistryError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// The tags of `reference`'s repository that point at `digest` (I/O: the tag list, then a HEAD per tag).
    pub fn tags_pointing_at(
        &self,
        reference: &ImageRef,
        digest: &Digest,
    ) -> Result<Vec<String>, RegistryError> {
        let mut found = Vec::new();
        for tag in self.list_tags(reference)? {
            if self.tag_digest(reference, &tag)?.as_ref() == Some(digest) {
                found.push(tag);
            }
        }
        Ok(found)
    }

    /// Deletes `tag` alone, leaving its manifest and every other tag (I/O), as OCI 1.1 registries allow.
    pub fn delete_tag(
        &self,
        reference: &ImageRef,
        tag: &str,
    ) -> Result<TagDeletion, RegistryError> {
        let repo = &reference.repository;
        let what = format!("deleting tag {repo}:{tag}");
        let response = self.send(
            &reference.registry,
            &[Scope::delete(repo)],
            &what,
            &|c, base| c.delete(format!("{base}/v2/{repo}/manifests/{tag}")),
        )?;
        let status = response.status();
        if status.is_success() {
            return Ok(TagDeletion::Deleted);
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(TagDeletion::NotFound);
        }
        // distribution 2.x takes the tag for a malformed digest (400 DIGEST_INVALID);
        // others answer 405 or UNSUPPORTED.
        if matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            let _ = read_limited(response, 4096, &reference.registry, &what);
            return Ok(TagDeletion::Unsupported);
        }
        Err(status_error(&reference.registry, &what, response))
    }
}

/// The path and query of the `rel="next"` page of a `Link` header (`</v2/x/tags/list?n=…&last=…>; rel="next"`).
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then_some(())?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        // An absolute URL is followed on the same registry only: keep its path and query.
        let path = match target.find("://") {
            Some(scheme_end) => {
                let rest = &target[scheme_end + 3..];
                &rest[rest.find('/')?..]
            }
            None => target,
        };
        path.starts_with("/v2/").then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn next_page_reads_relative_and_absolute_links() {
        assert_eq!(
            next_page(r#"</v2/a/b/tags/list?n=1000&last=v9>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?n=1000&last=v9")
        );
        assert_eq!(
            next_page(r#"<https://r.example/v2/a/tags/list?last=x>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=x")
        );
        assert_eq!(next_page(r#"</v2/a/tags/list?last=x>; rel="prev""#), None);
        assert_eq!(next_page("garbage"), None);
        assert_eq!(next_page(r#"</elsewhere>; rel="next""#), None);
    }
}
