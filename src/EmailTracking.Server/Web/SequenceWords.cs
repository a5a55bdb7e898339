using System.Globalization;
using EmailTracking.Data;
using EmailTracking.Server.Sequences;

namespace EmailTracking.Server.Web;

/// <summary>Words and formats of the sequence pages: states, why an enrolment stopped, send times, custom-field lines.</summary>
public static class SequenceWords
{
    /// <summary>Offered in the time-zone field; any IANA name is accepted.</summary>
    public static readonly string[] CommonZones =
    [
        "UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/Madrid",
        "Europe/Rome", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Helsinki", "Europe/Istanbul", "Europe/Moscow",
        "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles", "America/Anchorage", "America/Toronto",
        "America/Vancouver", "America/Mexico_City", "America/Sao_Paulo", "America/Buenos_Aires", "Africa/Johannesburg", "Africa/Lagos", "Africa/Cairo",
        "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul", "Australia/Perth",
        "Australia/Sydney", "Pacific/Auckland",
    ];

    public static string Status(SequenceStatus s) => s switch
    {
        SequenceStatus.Active => "active",
        SequenceStatus.Paused => "paused",
        _ => "archived",
    };

    public static string State(EnrolmentState s) => s switch
    {
        EnrolmentState.Active => "active",
        EnrolmentState.Paused => "paused",
        EnrolmentState.Completed => "completed",
        _ => "stopped",
    };

    public static string Reason(StopReason r) => r switch
    {
        StopReason.Replied => "replied",
        StopReason.ColleagueReplied => "a colleague replied",
        StopReason.Bounced => "bounced",
        StopReason.Unsubscribed => "unsubscribed",
        StopReason.Suppressed => "on the suppression list",
        StopReason.Manual => "by hand",
        StopReason.Failed => "could not be sent",
        StopReason.Complained => "marked as spam",
        StopReason.LeftCompany => "no longer there",
        _ => "",
    };

    /// <summary>"stopped — replied", "paused", "waiting", "active"…: what the enrolment is doing, in a few words.</summary>
    public static string Where(Enrolment e) => e.State switch
    {
        EnrolmentState.Stopped when e.StopReason != StopReason.None => "stopped — " + Reason(e.StopReason),
        EnrolmentState.Active when e.Note?.StartsWith("Waiting", StringComparison.Ordinal) == true => "waiting",
        _ => State(e.State),
    };

    /// <summary>A CSS class per state for the badge.</summary>
    public static string Css(Enrolment e) => e.State switch
    {
        EnrolmentState.Active when e.Note is not null => "waiting",
        EnrolmentState.Active => "active",
        EnrolmentState.Paused => "paused",
        EnrolmentState.Completed => "completed",
        _ => e.StopReason == StopReason.Replied || e.StopReason == StopReason.ColleagueReplied ? "replied" : "stopped",
    };

    /// <summary>A time in a zone, as "Tue 8 Dec 2026 09:00" (the zone named by the caller).</summary>
    public static string Local(DateTimeOffset t, string zoneId)
    {
        var zone = SendTimes.Zone(zoneId) ?? TimeZoneInfo.Utc;
        return TimeZoneInfo.ConvertTime(t, zone).ToString("ddd d MMM yyyy HH:mm", CultureInfo.InvariantCulture);
    }

    public static string Window(SequenceStep s) =>
        s.WindowStart.ToString("HH:mm", CultureInfo.InvariantCulture) + "–" + s.WindowEnd.ToString("HH:mm", CultureInfo.InvariantCulture);

    /// <summary>Custom fields typed as "name=value" lines; a line without "=" is an error naming its number.</summary>
    public static (Dictionary<string, string?> Fields, List<string> Errors) FieldLines(string? text)
    {
        var fields = new Dictionary<string, string?>();
        var errors = new List<string>();
        var lines = (text ?? "").Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            var eq = line.IndexOf('=');
            if (eq <= 0) { errors.Add($"Custom fields, line {i + 1}: write name=value (\"{(line.Length > 40 ? line[..40] + "…" : line)}\" has no name and \"=\")."); continue; }
            fields[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        return (fields, errors);
    }
}
