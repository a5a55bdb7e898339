using System.Data.Common;
using System.Text;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// One multi-row INSERT for a batch of events. SaveChanges spends most of a pixel hit's CPU on change tracking and
/// reading back generated ids that nobody needs here; this writes the same rows with the same column names and the
/// same value conversions, both taken from the EF model, so the two cannot drift apart.
/// </summary>
public sealed class EventInsert
{
    /// <summary>Rows per statement: well under SQLite's and PostgreSQL's limits on parameters per statement.</summary>
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

    public async Task ExecuteAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<TrackingEvent> events, CancellationToken ct)
    {
        for (var start = 0; start < events.Count; start += MaxRows)
        {
            var count = Math.Min(MaxRows, events.Count - start);
            await using var cmd = connection.CreateCommand();
            cmd.Transaction = transaction;
            var sql = new StringBuilder("INSERT INTO ").Append(table).Append(" (")
                .AppendJoin(", ", columns.Select(c => Quote(c.Column))).Append(") VALUES ");
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
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }
}
