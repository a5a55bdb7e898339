using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using EmailTracking.Server.Replies.Classification;

namespace EmailTracking.Cli;

/// <summary>The one-line JSON form of a classification that <c>et classify</c> prints.</summary>
static class ClassificationJson
{
    private static readonly JsonWriterOptions Options = new()
    {
        // Diagnostics quote servers in many languages; keep them readable in a terminal (this is not HTML).
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// {"file", "kind", "reason", "recipients": [{"address", "status", "permanent", "cause", "diagnostic"}], "status",
    /// "permanent", "original_message_id", "return_date" (yyyy-MM-dd), "feedback_type", "departed", "disposition",
    /// "opened"}; null where it does not apply ("departed" is true only for an auto-reply saying its author has left for
    /// good, "opened" only for a read receipt of a message its reader displayed).
    /// </summary>
    public static string Line(string file, InboundClassification result)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("file", file);
            json.WriteString("kind", Name(result.Kind.ToString()));
            json.WriteString("reason", result.Reason);
            json.WriteStartArray("recipients");
            foreach (var r in result.Recipients)
            {
                json.WriteStartObject();
                json.WriteString("address", r.Address);
                WriteStringOrNull(json, "status", r.Status);
                json.WriteBoolean("permanent", r.Permanent);
                json.WriteString("cause", Name(r.Cause.ToString()));
                WriteStringOrNull(json, "diagnostic", r.Diagnostic);
                WriteStringOrNull(json, "sent_to", r.SentTo);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            WriteStringOrNull(json, "status", result.Status);
            if (result.Permanent is { } permanent)
                json.WriteBoolean("permanent", permanent);
            else
                json.WriteNull("permanent");
            WriteStringOrNull(json, "original_message_id", result.OriginalMessageId);
            WriteStringOrNull(json, "return_date", result.ReturnDate?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            WriteStringOrNull(json, "feedback_type", result.FeedbackType);
            json.WriteBoolean("departed", result.Departed);
            WriteStringOrNull(json, "disposition", result.Disposition);
            json.WriteBoolean("opened", result.Opened);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>AutoReply → auto_reply, UserUnknown → user_unknown.</summary>
    private static string Name(string value) => JsonNamingPolicy.SnakeCaseLower.ConvertName(value);

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
            json.WriteNull(name);
        else
            json.WriteString(name, value);
    }
}
