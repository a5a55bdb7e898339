using System.Data.Common;
using System.Text;
using EmailTracking.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// Writes a batch of events without SaveChanges, which spent most of a pixel hit's CPU on change tracking and on
/// reading back generated ids that nobody needs here. Table, column names and value conversions all come from the EF
/// model, so this cannot drift from the schema. On SQLite one prepared single-row INSERT is stepped per row (no SQL
/// to parse per batch); elsewhere one multi-row INSERT per batch saves round trips.
/// </summary>
public sealed class EventInsert
{
    /// <summary>Rows per multi-row statement: well under PostgreSQL's limit on parameters per statement.</summary>
    public const int MaxRows = 1000;

    readonly string table;
    readonly IReadOnlyList<(IProperty Property, string Column, RelationalTypeMapping Mapping)> columns;
    DbCommand? prepared;

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
        if (connection is SqliteConnection) StepPrepared(connection, transaction, events);
        else MultiRow(connection, transaction, events);
    }

    /// <summary>Forgets the prepared statement (its connection is being closed).</summary>
    public void Reset()
    {
        prepared?.Dispose();
        prepared = null;
    }

    void StepPrepared(DbConnection connection, DbTransaction transaction, IReadOnlyList<TrackingEvent> events)
    {
        if (prepared is null || prepared.Connection != connection)
        {
            Reset();
            var cmd = connection.CreateCommand();
            cmd.CommandText = Head() + "(" + string.Join(", ", columns.Select((_, i) => "@p" + i)) + ")";
            for (var c = 0; c < columns.Count; c++)
            {
                var (property, _, mapping) = columns[c];
                cmd.Parameters.Add(mapping.CreateParameter(cmd, "@p" + c, null, property.IsNullable));
            }
            cmd.Prepare();
            prepared = cmd;
        }
        prepared.Transaction = transaction;
        foreach (var e in events)
        {
            for (var c = 0; c < columns.Count; c++)
            {
                var (property, _, mapping) = columns[c];
                var value = property.GetGetter().GetClrValue(e);
                if (value is not null && mapping.Converter is { } converter) value = converter.ConvertToProvider(value);
                prepared.Parameters[c].Value = value ?? DBNull.Value;
            }
            prepared.ExecuteNonQuery();
        }
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
