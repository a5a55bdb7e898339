using System.Text.Json;
using System.Text.Json.Serialization;

namespace EmailTracking.Server.Web;

/// <summary>
/// A time in a JSON body read as UTC when it names no zone (<c>"2026-12-02T09:00:00"</c>), as the query string's times
/// already are (<c>?before=</c>). The framework's reader took such a time in the server's own time zone: the same request
/// meant another instant on a server set to Tokyo than on one set to UTC, and a send time given so by a script
/// (Python's <c>datetime.utcnow().isoformat()</c> writes no zone) was recorded hours off, which moved every open and
/// click against it in the timing rules. A time with its zone (<c>Z</c>, <c>+01:00</c>) is read as it says, and times
/// are written as before.
/// </summary>
public sealed class ZonelessTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            // The reader gives a time without a zone as Unspecified (with Z as Utc, with an offset as Local): its clock
            // reading, taken as UTC here.
            if (reader.TryGetDateTime(out var clock) && clock.Kind == DateTimeKind.Unspecified) return new DateTimeOffset(clock, TimeSpan.Zero);
            if (reader.TryGetDateTimeOffset(out var value)) return value;
        }
        // As the framework's own converter fails: a 400 that says where (UnreadableRequests).
        throw new JsonException("The value is not an ISO 8601 time such as \"2026-12-02T09:00:00Z\"");
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
