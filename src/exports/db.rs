//! One connection to the journal's database, SQLite or PostgreSQL, behind the few calls the journal makes.
//!
//! The journal's statements are written once, with `?N` parameters
//! (SQLite's), and sent to PostgreSQL as `$N`; every value is a 64-bit
//! integer or text, which both store alike.

use std::collections::HashMap;

/// A parameter of a statement.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_string()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::Text(v)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::Text(v.map(str::to_string))
    }
}

/// What the database said went wrong; PostgreSQL's text has any URL password hidden.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(String),
    /// Another export holds a reservation a statement tried to take.
    #[error("the destination is reserved")]
    Conflict,
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        // Its source (the server's message, an I/O error) says what happened; the top line alone often does not.
        let mut text = e.to_string();
        if let Some(db) = e.as_db_error() {
            text = format!("{}: {}", db.severity(), db.message());
        } else if let Some(source) = std::error::Error::source(&e) {
            text = format!("{text}: {source}");
        }
        DbError::Postgres(super::location::redact(&text))
    }
}

/// A column value read back: what [`super::Row`] is made of.
pub type Cell = Value;

/// An open connection.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: Box<postgres::Client>,
        /// Statements prepared once per connection, by their SQL.
        prepared: HashMap<String, postgres::Statement>,
    },
}

impl Db {
    /// Runs a statement that returns no rows; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(conn) => {
                let params = sqlite_params(params);
                Ok(conn.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Db::Postgres { .. } => {
                let (client, statement) = self.prepared(sql)?;
                let params = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p.as_ref()).collect();
                Ok(client.execute(&statement, &refs)?)
            }
        }
    }

    /// Runs a query; each row as its cells, integers and texts in column order.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Cell>>, DbError> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let count = stmt.column_count();
                let params = sqlite_params(params);
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut cells = Vec::with_capacity(count);
                    for i in 0..count {
                        cells.push(match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Integer(n) => Value::Int(Some(n)),
                            rusqlite::types::ValueRef::Null => Value::Text(None),
                            rusqlite::types::ValueRef::Text(t) => {
                                Value::Text(Some(String::from_utf8_lossy(t).into_owned()))
                            }
                            rusqlite::types::ValueRef::Real(r) => Value::Int(Some(r as i64)),
                            rusqlite::types::ValueRef::Blob(b) => {
                                Value::Text(Some(String::from_utf8_lossy(b).into_owned()))
                            }
                        });
                    }
                    out.push(cells);
                }
                Ok(out)
            }
            Db::Postgres { .. } => {
                let (client, statement) = self.prepared(sql)?;
                let params = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p.as_ref()).collect();
                let rows = client.query(&statement, &refs)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut cells = Vec::with_capacity(row.len());
                    for (i, column) in row.columns().iter().enumerate() {
                        cells.push(match *column.type_() {
                            postgres::types::Type::INT8 => Value::Int(row.try_get(i)?),
                            postgres::types::Type::INT4 => {
                                Value::Int(row.try_get::<_, Option<i32>>(i)?.map(i64::from))
                            }
                            _ => Value::Text(row.try_get(i)?),
                        });
                    }
                    out.push(cells);
                }
                Ok(out)
            }
        }
    }

    /// The first column of the first row, as an integer.
    pub fn query_int(&mut self, sql: &str, params: &[Value]) -> Result<Option<i64>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next().and_then(|row| {
            match row.into_iter().next() {
                Some(Value::Int(n)) => n,
                _ => None,
            }
        }))
    }

    /// Runs `work` in one transaction (SQLite: `BEGIN IMMEDIATE`, so a writer waits its turn up front).
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Db) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let begin = match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres { .. } => "BEGIN",
        };
        self.batch(begin)?;
        match work(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres { client, .. } => Ok(client.batch_execute(sql)?),
        }
    }

    fn prepared(
        &mut self,
        sql: &str,
    ) -> Result<(&mut postgres::Client, postgres::Statement), DbError> {
        let Db::Postgres { client, prepared } = self else {
            return Err(DbError::Postgres("not a PostgreSQL connection".into()));
        };
        let statement = match prepared.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = client.prepare(&dollar_parameters(sql))?;
                prepared.insert(sql.to_string(), statement.clone());
                statement
            }
        };
        Ok((client, statement))
    }
}

/// `?N` parameters as PostgreSQL's `$N`.
fn dollar_parameters(sql: &str) -> String {
    sql.replace('?', "$")
}

fn sqlite_params(params: &[Value]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Value::Int(Some(n)) => rusqlite::types::Value::Integer(*n),
            Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
            Value::Int(None) | Value::Text(None) => rusqlite::types::Value::Null,
        })
        .collect()
}

fn pg_params(params: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                Value::Int(n) => Box::new(*n),
                Value::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_become_dollars() {
        assert_eq!(
            super::dollar_parameters("SELECT a FROM t WHERE b = ?1 AND c = ?2"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
    }
}
