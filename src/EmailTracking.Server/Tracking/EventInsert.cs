using System.Data.Common;
using System.Linq.Expressions;
using System.Text;
using EmailTracking.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using SQLitePCL;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// Writes a batch of events without SaveChanges, which spent most of a pixel hit's CPU on change tracking and on
/// reading back generated ids that nobody needs here. Table, column names and value conversions all come from the EF
/// model, so this cannot drift from the schema. On SQLite prepared INSERTs of <see cref="SqliteRowsPerStatement"/> rows
/// and of one row are stepped (no SQL to parse per batch, see <see cref="Step"/>); elsewhere one multi-row INSERT per
/// batch saves round trips.
/// </summary>
public sealed class EventInsert
{
    /// <summary>Rows per multi-row statement: well under PostgreSQL's limit on parameters per statement.</summary>
    public const int MaxRows = 1000;

    readonly string table;
    readonly IReadOnlyList<(IProperty Property, string Column, RelationalTypeMapping Mapping)> columns;

    public EventInsert(IModel model)
    {
        var entity = model.FindEntityType(typeof(TrackingEvent))!;
        var store = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        table = Quote(entity.GetTableName()!);
        columns = [.. entity.GetProperties()
            .Where(p => !p.IsPrimaryKey()) // the id comes from the database
            .Select(p => (p, p.GetColumnName(store)!, (RelationalTypeMapping)p.GetRelationalTypeMapping()))];
    }

    static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    string Head() => new StringBuilder("INSERT INTO ").Append(table).Append(" (")
        .AppendJoin(", ", columns.Select(c => Quote(c.Column))).Append(") VALUES ").ToString();

    /// <summary>Synchronous on purpose: it runs on the recorder's own thread (see <see cref="EventRecorder"/>).</summary>
    public void Execute(DbConnection connection, DbTransaction transaction, IReadOnlyList<TrackingEvent> events)
    {
        if (connection is SqliteConnection sqlite) Step(sqlite, events);
        else MultiRow(connection, transaction, events);
    }

    /// <summary>Rows per SQLite statement, for all but the last few rows of a batch (which go one by one).</summary>
    public const int SqliteRowsPerStatement = 16;

    sqlite3_stmt? oneRow;
    sqlite3_stmt? manyRows;
    SqliteConnection? statementConnection;
    Action<sqlite3_stmt, int, TrackingEvent>? bindRow;

    /// <summary>
    /// Steps prepared INSERTs through SQLite's own API (SQLitePCLRaw, which Microsoft.Data.Sqlite is built on), on the
    /// connection and inside the transaction the caller began: <see cref="SqliteRowsPerStatement"/> rows at a time, the
    /// rest one by one, with no SQL to parse per batch. Through a prepared <see cref="SqliteCommand"/> each row also paid
    /// for the command's machinery (a data reader per execution, each parameter found by name and bound through a type
    /// switch): about 1.5 µs of the recorder thread's 7.4 µs per row, and every hit waits on that thread. Sixteen rows
    /// per statement take a fifth off what is left, now that the table has no AUTOINCREMENT counter (with it, a
    /// multi-row statement cost more than single rows). The values are bound by <see cref="CompileRowBinder"/>.
    /// </summary>
    void Step(SqliteConnection connection, IReadOnlyList<TrackingEvent> events)
    {
        if (!ReferenceEquals(statementConnection, connection)) Reset();
        statementConnection = connection;
        bindRow ??= CompileRowBinder(columns);
        var done = 0;
        if (events.Count >= SqliteRowsPerStatement)
        {
            manyRows ??= Prepare(connection, SqliteRowsPerStatement);
            for (; done + SqliteRowsPerStatement <= events.Count; done += SqliteRowsPerStatement)
            {
                for (var r = 0; r < SqliteRowsPerStatement; r++) bindRow(manyRows, r * columns.Count, events[done + r]);
                Run(connection, manyRows);
            }
        }
        if (done == events.Count) return;
        oneRow ??= Prepare(connection, 1);
        for (; done < events.Count; done++)
        {
            bindRow(oneRow, 0, events[done]);
            Run(connection, oneRow);
        }
    }

    sqlite3_stmt Prepare(SqliteConnection connection, int rows)
    {
        var sql = new StringBuilder(Head());
        for (var r = 0; r < rows; r++)
        {
            sql.Append(r == 0 ? "(" : ", (").AppendJoin(", ", columns.Select((_, c) => "?" + (r * columns.Count + c + 1))).Append(')');
        }
        var db = connection.Handle!;
        var rc = raw.sqlite3_prepare_v3(db, sql.ToString(), raw.SQLITE_PREPARE_PERSISTENT, out var prepared, out _);
        SqliteException.ThrowExceptionForRC(rc, db);
        return prepared;
    }

    static void Run(SqliteConnection connection, sqlite3_stmt statement)
    {
        var step = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (step != raw.SQLITE_DONE) SqliteException.ThrowExceptionForRC(step, connection.Handle);
    }

    /// <summary>
    /// Compiles, from the EF model, one delegate that binds all of a row's values to the statement's parameters
    /// (<c>?1</c> … in column order, after the given number of parameters of the rows before it): each column read
    /// through its property and converted with the model's own converter expression, typed all the way, so no value is
    /// boxed. Going through the boxed getter and converter for each of the 17 columns cost about 1 µs a row, a fifth of
    /// the insert (bench/pixel's hits wait on it). A Guid stored as the model's 16 bytes is written into a stack buffer
    /// rather than a new array, after checking here that the model's converter gives those very bytes; text is encoded
    /// to UTF-8 on the stack too.
    /// </summary>
    static Action<sqlite3_stmt, int, TrackingEvent> CompileRowBinder(IReadOnlyList<(IProperty Property, string Column, RelationalTypeMapping Mapping)> columns)
    {
        var statement = Expression.Parameter(typeof(sqlite3_stmt), "statement");
        var offset = Expression.Parameter(typeof(int), "offset");
        var row = Expression.Parameter(typeof(TrackingEvent), "row");
        var binds = new List<Expression>();
        for (var c = 0; c < columns.Count; c++)
        {
            var (property, column, mapping) = columns[c];
            var index = Expression.Add(offset, Expression.Constant(c + 1));
            Expression value = Expression.Property(row, property.PropertyInfo
                ?? throw new InvalidOperationException($"Events.{column}: a shadow property cannot be bound"));
            Expression? isNull = null;
            if (Nullable.GetUnderlyingType(value.Type) is not null)
            {
                isNull = Expression.Not(Expression.Property(value, "HasValue"));
                value = Expression.Property(value, "Value");
            }
            else if (!value.Type.IsValueType)
            {
                isNull = Expression.Equal(value, Expression.Constant(null, value.Type));
            }
            Expression bind;
            if (mapping.Converter is { } converter && value.Type == typeof(Guid) && GivesGuidBytes(converter))
            {
                bind = Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Guid), null, statement, index, value);
            }
            else
            {
                if (mapping.Converter is { } other)
                {
                    var convert = other.ConvertToProviderExpression;
                    var input = convert.Parameters[0];
                    value = Expression.Block([input], Expression.Assign(input, value.Type == input.Type ? value : Expression.Convert(value, input.Type)), convert.Body);
                }
                bind = value.Type switch
                {
                    var t when t == typeof(long) => Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Int64), null, statement, index, value),
                    var t when t == typeof(int) || t == typeof(short) || t == typeof(byte) || t == typeof(bool) =>
                        Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Int64), null, statement, index, Expression.Convert(value, typeof(long))),
                    var t when t == typeof(string) => Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Text), null, statement, index, value),
                    var t when t == typeof(byte[]) => Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Blob), null, statement, index, value),
                    var t => throw new InvalidOperationException($"Events.{column}: no SQLite binding for {t}"),
                };
            }
            binds.Add(isNull is null
                ? bind
                : Expression.IfThenElse(isNull, Expression.Call(typeof(SqliteBind), nameof(SqliteBind.Null), null, statement, index), bind));
        }
        return Expression.Lambda<Action<sqlite3_stmt, int, TrackingEvent>>(Expression.Block(binds), statement, offset, row).Compile();
    }

    static bool GivesGuidBytes(Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter converter)
    {
        var probe = new Guid("00112233-4455-6677-8899-aabbccddeeff");
        return converter.ModelClrType == typeof(Guid) && converter.ConvertToProvider(probe) is byte[] bytes && bytes.AsSpan().SequenceEqual(probe.ToByteArray());
    }

    /// <summary>Binding one value; a refusal (out of memory, a parameter out of range) throws with SQLite's reason.</summary>
    static class SqliteBind
    {
        static void Check(int rc, sqlite3_stmt statement)
        {
            if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, raw.sqlite3_db_handle(statement));
        }

        public static void Null(sqlite3_stmt statement, int index) => Check(raw.sqlite3_bind_null(statement, index), statement);

        public static void Int64(sqlite3_stmt statement, int index, long value) => Check(raw.sqlite3_bind_int64(statement, index, value), statement);

        public static void Blob(sqlite3_stmt statement, int index, byte[] value) => Check(raw.sqlite3_bind_blob(statement, index, value), statement);

        public static void Guid(sqlite3_stmt statement, int index, Guid value)
        {
            Span<byte> bytes = stackalloc byte[16];
            value.TryWriteBytes(bytes);
            Check(raw.sqlite3_bind_blob(statement, index, bytes), statement);
        }

        public static void Text(sqlite3_stmt statement, int index, string value)
        {
            if (value.Length > 512)
            {
                Check(raw.sqlite3_bind_text(statement, index, value), statement);
                return;
            }
            Span<byte> utf8 = stackalloc byte[512 * 3];
            var length = Encoding.UTF8.GetBytes(value, utf8);
            Check(raw.sqlite3_bind_text(statement, index, utf8[..length]), statement);
        }
    }

    /// <summary>Finalizes the prepared statements (their connection is being closed, which they must not outlive).</summary>
    public void Reset()
    {
        oneRow?.Dispose();
        manyRows?.Dispose();
        oneRow = null;
        manyRows = null;
        statementConnection = null;
    }

    void MultiRow(DbConnection connection, DbTransaction transaction, IReadOnlyList<TrackingEvent> events)
    {
        for (var start = 0; start < events.Count; start += MaxRows)
        {
            var count = Math.Min(MaxRows, events.Count - start);
            using var cmd = connection.CreateCommand();
            cmd.Transaction = transaction;
            var sql = new StringBuilder(Head());
            var n = 0;
            for (var i = 0; i < count; i++)
            {
                var e = events[start + i];
                sql.Append(i == 0 ? "(" : ", (");
                for (var c = 0; c < columns.Count; c++)
                {
                    var (property, _, mapping) = columns[c];
                    var name = "@p" + n++;
                    if (c > 0) sql.Append(", ");
                    sql.Append(name);
                    cmd.Parameters.Add(mapping.CreateParameter(cmd, name, property.GetGetter().GetClrValue(e), property.IsNullable));
                }
                sql.Append(')');
            }
            cmd.CommandText = sql.ToString();
            cmd.ExecuteNonQuery();
        }
    }
}
