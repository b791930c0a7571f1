//! `[app] user` given by name, resolved for the owner of the added files in
//! the base's `/etc/passwd` and `/etc/group`, as the runtime resolves it;
//! before the plan, since the plan writes owners into every entry.

use crate::check::users::{self, UnknownName};
use crate::commands::Session;
use crate::commands::start_check::read_base_file;
use crate::error::Error;
use crate::plan::{self, BuildRequest};
use crate::reference::Location;
use crate::spec::{Owner, SpecError};
use crate::transport;

/// The request with every owner given by name made numeric (I/O: reads the
/// base's two files only when a name needs them); a name the base lacks is
/// a spec error at the line that gives it.
pub fn resolve_owner_names(
    session: &Session,
    request: BuildRequest,
) -> Result<BuildRequest, Error> {
    if request.spec.owner_names().is_empty() {
        return Ok(request);
    }
    let (base, platform) = plan::base_and_platform(&request)?;
    let (passwd, group) = match base {
        Location::Scratch => (None, None),
        base => {
            let access = session.access()?;
            let (image, read) = transport::read_image(&base, &platform, &access)?;
            let origin = read.origin.as_ref();
            (
                read_base_file(&image, origin, &access, "etc/passwd")?,
                read_base_file(&image, origin, &access, "etc/group")?,
            )
        }
    };
    let BuildRequest { spec, options } = request;
    let path = spec.path.clone();
    let spec = spec.with_owners(|named| {
        let ids = users::owner_ids(
            &named.user,
            named.group.as_deref(),
            passwd.as_deref(),
            group.as_deref(),
        );
        match ids {
            Ok((uid, gid)) => Ok(Owner { uid, gid }),
            Err(unknown) => Err(unknown_name(&path, named.position, &unknown)),
        }
    })?;
    Ok(BuildRequest { spec, options })
}

/// The spec error for a name the base's files lack.
fn unknown_name(
    path: &std::path::Path,
    position: (usize, usize),
    unknown: &UnknownName,
) -> SpecError {
    let (what, name, file) = match unknown {
        UnknownName::User(name) => ("user", name, "/etc/passwd"),
        UnknownName::Group(name) => ("group", name, "/etc/group"),
    };
    SpecError::at(
        path,
        position,
        format!("{what} `{name}` is not in the base's {file}, so it cannot own the added files"),
        "use a name the base has, give numbers (`user = \"1000:100\"`), or set a numeric `owner = \"UID:GID\"` on each entry"
            .to_string(),
    )
}
