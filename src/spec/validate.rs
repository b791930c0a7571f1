//! The validator: turns the raw tables into a [`Spec`], one section at a time,
//! and every problem into a [`SpecError`] at the place in the file it concerns.

use std::collections::BTreeMap;

use toml::Spanned;

use super::entries::{DefaultOwner, MountKind};
use super::fields::{absolute_hint, is_env_name, normalise_path};
use super::raw::{OrderedTable, RawApp, RawFile, RawSecrets, RawSpec};
use super::validator::Validator;
use super::values::is_value_key;
use super::{ExtraFile, Mount, Spec, SpecError};
use crate::attest::Attestations;
use crate::reference::Location;

/// `[app]` checked: everything but `user`, which the spec keeps as written.
struct App {
    library: Option<Mount>,
    workspace: Option<Mount>,
    exclude: Vec<String>,
    entrypoint: Option<Vec<String>>,
    command: Option<Vec<String>>,
    ports: Vec<String>,
    workdir: Option<String>,
}

impl Validator<'_> {
    /// Checks every section, in the order the type's doc gives.
    pub(super) fn validate(&self, raw: RawSpec) -> Result<Spec, SpecError> {
        let (base, base_text) = match raw.base {
            Some(b) => (self.check_location(&b, "base")?, b.into_inner()),
            None => (Location::Scratch, "scratch".to_string()),
        };
        let image = raw
            .image
            .map(|i| self.check_location(&i, "image"))
            .transpose()?;
        let platform = raw.platform.map(|p| self.check_platform(&p)).transpose()?;

        let Some(app) = raw.app else {
            return Err(self.error(
                0..0,
                "missing [app] table".to_string(),
                "add `[app]` with `library = { source = \"library\", target = \"/opt/app\" }`",
            ));
        };
        let app_span = app.span();
        let raw_app = app.into_inner();
        let default_owner = self.default_owner(raw_app.user.as_ref())?;
        let app = self.app(&raw_app, &default_owner)?;
        let files = self.files(raw.files.as_deref(), &default_owner)?;
        if app.library.is_none() && app.workspace.is_none() && files.is_empty() {
            return Err(self.error(
                app_span,
                "the image adds nothing: [app] has no `library` or `workspace`, and there is no [[files]] entry".to_string(),
                "add `library = { source = \"library\", target = \"/opt/app\" }` under [app], or a [[files]] entry (`source`, `target`, `mode`) for each file the image needs",
            ));
        }
        let (secret_names, secret_allow) = self.secrets(raw.secrets.as_ref())?;
        let env = self.env(raw.env.as_ref(), &secret_names)?;
        let labels = self.labels(raw.labels.as_ref())?;
        let value_findings = self.value_findings(&raw_app, raw.env.as_ref(), raw.labels.as_ref());

        Ok(Spec {
            path: self.path.to_path_buf(),
            base,
            base_text,
            image,
            platform,
            library: app.library,
            workspace: app.workspace,
            exclude: app.exclude,
            entrypoint: app.entrypoint,
            command: app.command,
            ports: app.ports,
            workdir: app.workdir,
            user: raw_app.user.map(Spanned::into_inner),
            files,
            env,
            secret_names,
            secret_allow,
            labels,
            value_findings,
            attest: raw
                .attest
                .map_or_else(Attestations::default, |a| Attestations {
                    sbom: a.sbom.unwrap_or(false),
                    provenance: a.provenance.unwrap_or(false),
                }),
        })
    }

    /// `[app]`.
    fn app(&self, app: &RawApp, default_owner: &DefaultOwner<'_>) -> Result<App, SpecError> {
        let library = app
            .library
            .as_ref()
            .map(|l| self.mount(l, MountKind::Library, default_owner))
            .transpose()?;
        let workspace = app
            .workspace
            .as_ref()
            .map(|w| self.mount(w, MountKind::Workspace, default_owner))
            .transpose()?;
        let mut exclude = Vec::new();
        for pattern in app.exclude.iter().flatten() {
            self.check_exclude(pattern)?;
            exclude.push(pattern.get_ref().clone());
        }
        let entrypoint = app
            .entrypoint
            .as_ref()
            .map(|e| self.check_argv(e, "entrypoint"))
            .transpose()?;
        let command = app
            .command
            .as_ref()
            .map(|c| self.check_argv(c, "command"))
            .transpose()?;
        let ports = self.ports(app.ports.as_deref())?;
        let workdir = app.workdir.as_ref().map(|w| self.workdir(w)).transpose()?;
        Ok(App {
            library,
            workspace,
            exclude,
            entrypoint,
            command,
            ports,
            workdir,
        })
    }

    /// `[app] ports`, normalised; the same port twice is a mistake, even when written differently.
    fn ports(&self, ports: Option<&[Spanned<toml::Value>]>) -> Result<Vec<String>, SpecError> {
        let mut normals: Vec<String> = Vec::new();
        for port in ports.into_iter().flatten() {
            let normal = self.check_port(port)?;
            if normals.contains(&normal) {
                return Err(self.error(
                    port.span(),
                    format!("port {normal} is listed twice"),
                    "remove the duplicate",
                ));
            }
            normals.push(normal);
        }
        Ok(normals)
    }

    /// `[app] workdir`: an absolute path in the image, which may be `/`.
    fn workdir(&self, workdir: &Spanned<String>) -> Result<String, SpecError> {
        normalise_path(workdir.get_ref(), true).map_err(|why| {
            self.error(
                workdir.span(),
                format!("workdir `{}` {why}", workdir.get_ref()),
                absolute_hint(workdir.get_ref()),
            )
        })
    }

    /// `[[files]]`, in file order.
    fn files(
        &self,
        files: Option<&[Spanned<RawFile>]>,
        default_owner: &DefaultOwner<'_>,
    ) -> Result<Vec<ExtraFile>, SpecError> {
        files
            .into_iter()
            .flatten()
            .map(|file| self.extra_file(file, default_owner))
            .collect()
    }

    /// `[secrets]`: the extra names `[env]` may not set, then the paths the secret scan lets through.
    fn secrets(
        &self,
        secrets: Option<&RawSecrets>,
    ) -> Result<(Vec<String>, Vec<String>), SpecError> {
        let mut names = Vec::new();
        for name in secrets.iter().flat_map(|s| s.names.iter().flatten()) {
            if !is_env_name(name.get_ref()) {
                return Err(self.error(
                    name.span(),
                    format!("`{}` is not an environment variable name", name.get_ref()),
                    "names are letters, digits and `_`, not starting with a digit",
                ));
            }
            names.push(name.get_ref().clone());
        }
        let mut allow = Vec::new();
        for path in secrets.iter().flat_map(|s| s.allow.iter().flatten()) {
            if is_value_key(path.get_ref()) {
                allow.push(path.get_ref().clone());
                continue;
            }
            let normal = normalise_path(path.get_ref(), false).map_err(|why| {
                self.error(
                    path.span(),
                    format!("[secrets] allow path `{}` {why}", path.get_ref()),
                    "write the path in the image that the scan reported, e.g. \"/opt/app/tests/fixtures/key.pem\", or the key of a value, e.g. \"env.NAME\"",
                )
            })?;
            allow.push(normal);
        }
        Ok((names, allow))
    }

    /// `[env]`, in file order (an entry may expand the ones above it).
    fn env(
        &self,
        env: Option<&OrderedTable>,
        secret_names: &[String],
    ) -> Result<Vec<(String, String)>, SpecError> {
        env.iter()
            .flat_map(|t| t.0.iter())
            .map(|(key, value)| self.env_entry(key, value, secret_names))
            .collect()
    }

    /// `[labels]`: any non-blank key, string values.
    fn labels(&self, labels: Option<&OrderedTable>) -> Result<BTreeMap<String, String>, SpecError> {
        let mut checked = BTreeMap::new();
        for (key, value) in labels.iter().flat_map(|t| t.0.iter()) {
            if key.get_ref().trim().is_empty() {
                return Err(self.error(
                    key.span(),
                    "label key is empty".to_string(),
                    "name the label, e.g. \"org.opencontainers.image.source\"",
                ));
            }
            let value = self.string_value(key, value, "label")?;
            checked.insert(key.get_ref().clone(), value);
        }
        Ok(checked)
    }
}
