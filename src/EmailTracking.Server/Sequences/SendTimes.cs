namespace EmailTracking.Server.Sequences;

/// <summary>
/// When a step is due, in the recipient's time zone: a number of days after the previous step (working days only
/// when the step says so), then moved into the step's send window; a window that is closed (evening, weekend) moves
/// it to the next opening. Daylight-saving gaps and repeats are resolved to a real instant.
/// </summary>
public static class SendTimes
{
    public static bool IsBusinessDay(DateOnly d) => d.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday);

    /// <summary>The time zone named by an IANA id (or a Windows id), or null.</summary>
    public static TimeZoneInfo? Zone(string? id)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Length > 64) return null;
        return TimeZoneInfo.TryFindSystemTimeZoneById(id.Trim(), out var tz) ? tz : null;
    }

    /// <summary>
    /// When a step goes: <paramref name="delayDays"/> days after <paramref name="after"/> (the previous step's
    /// sending, or the enrolment), at the same time of day, then into [windowStart, windowEnd) of an allowed day.
    /// </summary>
    public static DateTimeOffset Due(DateTimeOffset after, int delayDays, bool businessDaysOnly, TimeOnly windowStart, TimeOnly windowEnd, TimeZoneInfo zone)
    {
        if (windowEnd <= windowStart) throw new ArgumentException("The send window must end after it starts.");
        var local = TimeZoneInfo.ConvertTime(after, zone);
        var day = DateOnly.FromDateTime(local.DateTime);
        var time = TimeOnly.FromDateTime(local.DateTime);
        for (var left = delayDays; left > 0;)
        {
            day = day.AddDays(1);
            if (!businessDaysOnly || IsBusinessDay(day)) left--;
        }
        if (time < windowStart) time = windowStart;
        else if (time >= windowEnd)
        {
            day = day.AddDays(1);
            time = windowStart;
        }
        while (businessDaysOnly && !IsBusinessDay(day))
        {
            day = day.AddDays(1);
            time = windowStart;
        }
        var due = ToInstant(day, time, zone);
        // Never before the moment it was computed from (a window start that daylight saving moved, say).
        return due < after ? after : due;
    }

    /// <summary>The next opening of the window at or after <paramref name="at"/> (a pause ending at night waits for the morning).</summary>
    public static DateTimeOffset NextOpening(DateTimeOffset at, bool businessDaysOnly, TimeOnly windowStart, TimeOnly windowEnd, TimeZoneInfo zone) =>
        Due(at, 0, businessDaysOnly, windowStart, windowEnd, zone);

    /// <summary>A local day and time as an instant: a time skipped by daylight saving moves forward by the gap; a repeated one takes the first.</summary>
    public static DateTimeOffset ToInstant(DateOnly day, TimeOnly time, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(time, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local)) local = local.AddMinutes(30);
        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset).ToUniversalTime();
    }
}
