using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Sequences;

/// <summary>
/// One pass of the scheduler: answers first (a person's reply stops an enrolment, an out-of-office robot pauses it,
/// a bounce stops it and suppresses the address), then the due steps of the enrolments this instance can lease.
/// A step's intent (its tracked message and Message-ID) is committed before the mail leaves; an intent found on a
/// later pass means a crash between sending and recording, and the Sent folder is searched for that Message-ID
/// before anything is sent again, so a step never goes twice.
/// </summary>
public sealed class SequenceRunner(AppDbContext db, IServiceProvider services, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, IOptions<SequenceOptions> options,
    IOptions<TrackingOptions> tracking, TrackingTargets targets, Data.DatabaseInfo database, ILogger<SequenceRunner> log)
{
    /// <summary>
    /// Mail providers whose users are not one company: a reply from one of them never stops the others at the "same
    /// company". The big international ones with their country domains, and the national providers and ISPs of the
    /// larger markets.
    /// </summary>
    static readonly HashSet<string> FreeMail = new(StringComparer.OrdinalIgnoreCase)
    {
        // Google, Microsoft, Yahoo, Apple, AOL
        "gmail.com", "googlemail.com",
        "outlook.com", "outlook.de", "outlook.fr", "outlook.es", "outlook.it", "outlook.jp", "outlook.com.br", "outlook.co.uk",
        "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.es", "hotmail.it", "hotmail.nl", "hotmail.be",
        "hotmail.ca", "hotmail.com.br", "hotmail.com.ar", "hotmail.co.jp", "live.com", "live.co.uk", "live.fr", "live.de",
        "live.nl", "live.it", "live.be", "live.ca", "live.com.au", "live.com.mx", "msn.com", "passport.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.ca", "yahoo.com.au", "yahoo.com.br",
        "yahoo.com.ar", "yahoo.com.mx", "yahoo.co.in", "yahoo.co.jp", "yahoo.com.sg", "yahoo.com.hk", "yahoo.com.tw", "yahoo.gr",
        "yahoo.ie", "yahoo.se", "yahoo.dk", "yahoo.no", "yahoo.pl", "ymail.com", "rocketmail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "aol.de", "aol.fr", "aim.com",
        // Privacy and independent providers
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tutanota.de", "tuta.io", "tuta.com",
        "fastmail.com", "fastmail.fm", "hey.com", "mailbox.org", "posteo.de", "posteo.net", "zoho.com", "zohomail.com",
        "mail.com", "email.com", "usa.com", "gmx.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.fr", "gmx.co.uk",
        "web.de", "hushmail.com", "runbox.com", "disroot.org", "yandex.com", "yandex.ru", "ya.ru",
        // Germany, Austria, Switzerland
        "t-online.de", "freenet.de", "arcor.de", "vodafone.de", "1und1.de", "online.de", "bluewin.ch", "gmx.li", "aon.at", "chello.at",
        // France, Belgium
        "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net", "bbox.fr", "skynet.be", "telenet.be",
        // UK, Ireland
        "btinternet.com", "btopenworld.com", "sky.com", "virginmedia.com", "ntlworld.com", "talktalk.net", "blueyonder.co.uk", "eircom.net",
        // Italy, Spain, Portugal
        "libero.it", "virgilio.it", "alice.it", "tin.it", "tiscali.it", "email.it", "fastwebnet.it", "telefonica.net", "movistar.es",
        "terra.es", "sapo.pt", "iol.pt",
        // Netherlands, Nordics, Poland, Czechia
        "ziggo.nl", "kpnmail.nl", "planet.nl", "home.nl", "xs4all.nl", "telia.com", "telia.se", "bredband.net", "online.no",
        "wp.pl", "o2.pl", "onet.pl", "interia.pl", "op.pl", "seznam.cz", "centrum.cz", "volny.cz",
        // Russia and neighbours
        "mail.ru", "inbox.ru", "list.ru", "bk.ru", "rambler.ru", "ukr.net", "i.ua",
        // Americas
        "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "charter.net", "cox.net", "earthlink.net",
        "optonline.net", "frontier.com", "windstream.net", "juno.com", "netzero.net", "shaw.ca", "rogers.com", "sympatico.ca",
        "videotron.ca", "telus.net", "bol.com.br", "uol.com.br", "terra.com.br", "ig.com.br", "prodigy.net.mx",
        // Asia and Oceania
        "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn", "sohu.com", "aliyun.com", "139.com",
        "naver.com", "hanmail.net", "daum.net", "kakao.com", "nate.com", "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp",
        "i.softbank.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp", "rediffmail.com", "bigpond.com", "bigpond.net.au",
        "optusnet.com.au", "iinet.net.au", "xtra.co.nz",
    };

    public async Task RunOnceAsync(string owner, string baseUrl, CancellationToken ct)
    {
        await ApplyAnswersAsync(ct);
        foreach (var id in await ClaimAsync(owner, ct))
        {
            try
            {
                await ProcessAsync(id, owner, baseUrl, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                log.LogError(ex, "Sequence enrolment {Enrolment} could not be worked on; its lease runs out and it is tried again", id);
                db.ChangeTracker.Clear();
            }
        }
    }

    // ---- answers ----

    /// <summary>
    /// Answers recorded by the mailbox watchers that concern an active or paused enrolment, oldest first: anything
    /// answering one of its steps, and a person's reply from the enrolled address itself to any of the owner's mail.
    /// </summary>
    /// <remarks>
    /// An answer is stored against the one tracked message it matched first: In-Reply-To before References, the
    /// latest copy of a provider thread. When the salesperson wrote in the sequence's thread by hand (tracked, as
    /// every mail of theirs is), the prospect's reply to that matches the hand-written mail, not the step. Finding
    /// the sequence by thread instead is not reliable: the References the reply also named are not kept, and a
    /// provider thread id exists only for Gmail and Graph and only on copies that went through them. The author is
    /// known for every answer, so a reply from the enrolled address stops the enrolment whatever mail of the owner it
    /// answers: they are talking with the person the sequence writes for, and a "did you see my note?" would be wrong
    /// in any conversation. Only a person's reply (a robot answers anything; its pause comes from answers to the
    /// steps), and only one received since the enrolment was made (an earlier conversation was known when they were
    /// enrolled). Answers to a step from anyone else (a colleague, a forward) still count through the step. An
    /// address enrolled with its domain in punycode and read from mail in Unicode is not found by its author, only
    /// through the steps.
    /// </remarks>
    public async Task ApplyAnswersAsync(CancellationToken ct)
    {
        foreach (var (enrolmentId, theirs) in await UnappliedAsync(null, ct))
        {
            try
            {
                var e = await db.Enrolments.FirstAsync(x => x.Id == enrolmentId, ct);
                var sequence = await db.Sequences.Include(s => s.Steps).AsNoTracking().FirstAsync(s => s.Id == e.SequenceId, ct);
                await ApplyAllAsync(e, sequence, theirs, ct);
                e.UpdatedAt = clock.GetUtcNow();
                await db.SaveChangesAsync(ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Every pass starts here, on every instance: an answer that fails each time it is applied would keep
                // every team's sequences from sending, for good. It is passed over, and its enrolment stops with the
                // reason: an answer not applied may be a person's reply, and the steps after it must not go unseen.
                log.LogError(ex, "Answers to sequence enrolment {Enrolment} could not be applied; it stops and the answers are passed over", enrolmentId);
                db.ChangeTracker.Clear();
                await PassOverAsync(enrolmentId, theirs, ex);
            }
        }
    }

    /// <summary>
    /// The answers not applied yet (see <see cref="ApplyAnswersAsync"/>) of every live enrolment, or of the one
    /// enrolment given, by enrolment, each enrolment's oldest first; at most 500 answers at a time.
    /// </summary>
    async Task<List<(Guid EnrolmentId, List<InboundMessage> Answers)>> UnappliedAsync(Guid? only, CancellationToken ct)
    {
        var live = new[] { EnrolmentState.Active, EnrolmentState.Paused };
        var enrolments = db.Enrolments.Where(e => live.Contains(e.State));
        if (only is { } id) enrolments = enrolments.Where(e => e.Id == id);
        var toSteps = from e in enrolments
                      join s in db.SequenceSends on e.Id equals s.EnrolmentId
                      join i in db.InboundMessages on s.TrackedMessageId equals i.TrackedMessageId
                      where i.Id > e.InboundSeen
                      select new { InboundId = i.Id, EnrolmentId = e.Id };
        var fromThem = from e in enrolments
                       join i in db.InboundMessages on new { e.UserId, e.Address } equals new { i.UserId, Address = i.FromAddress }
                       where i.Id > e.InboundSeen && i.Kind == EventKind.Reply && i.ReceivedAt >= e.CreatedAt
                       select new { InboundId = i.Id, EnrolmentId = e.Id };
        var pending = await toSteps.Union(fromThem).OrderBy(p => p.InboundId).Take(500).ToListAsync(ct);
        if (pending.Count == 0) return [];
        var ids = pending.Select(p => p.InboundId).Distinct().ToList();
        var answers = await db.InboundMessages.AsNoTracking().Where(i => ids.Contains(i.Id)).ToDictionaryAsync(i => i.Id, ct);
        return [.. pending.GroupBy(p => p.EnrolmentId).Select(g => (g.Key, g.Select(p => answers[p.InboundId]).DistinctBy(i => i.Id).ToList()))];
    }

    /// <summary>Applies the answers, oldest first, to the enrolment (tracked, not saved), and moves it past them.</summary>
    async Task ApplyAllAsync(Enrolment e, Sequence sequence, List<InboundMessage> answers, CancellationToken ct)
    {
        foreach (var inbound in answers)
        {
            if (inbound.Id <= e.InboundSeen) continue;
            e.InboundSeen = inbound.Id;
            if (e.State is not (EnrolmentState.Active or EnrolmentState.Paused)) continue;
            await ApplyAsync(e, sequence, inbound, ct);
        }
    }

    /// <summary>
    /// Moves an enrolment past answers that could not be applied, and stops it with a note saying so; only if no one
    /// applied them meanwhile: another instance applying the same answers at the same moment (a deadlock, a suppression
    /// both inserted) makes this one fail, and is no reason to stop.
    /// </summary>
    async Task PassOverAsync(Guid enrolmentId, List<InboundMessage> answers, Exception ex)
    {
        var first = answers[0];
        var seen = answers[^1].Id;
        var note = $"Stopped: the answer from {first.FromAddress} of {first.ReceivedAt:yyyy-MM-dd HH:mm} UTC could not be applied ({ex.Message}). " +
                   "Read it in the mailbox; enrol the address again to go on.";
        if (note.Length > 1000) note = note[..1000];
        var now = clock.GetUtcNow();
        await db.Enrolments.Where(x => x.Id == enrolmentId && x.InboundSeen < seen && (x.State == EnrolmentState.Active || x.State == EnrolmentState.Paused))
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.InboundSeen, seen).SetProperty(x => x.State, EnrolmentState.Stopped)
                .SetProperty(x => x.StopReason, StopReason.Failed).SetProperty(x => x.Note, note).SetProperty(x => x.NextAt, (DateTimeOffset?)null)
                .SetProperty(x => x.PausedUntil, (DateTimeOffset?)null).SetProperty(x => x.UpdatedAt, now), CancellationToken.None);
    }

    /// <summary>
    /// The longest an out-of-office reply pauses an enrolment, in days: a return date further off (a sabbatical, a
    /// typo, a robot's 9999-12-31) is taken as this many days from the day the answer is applied. If the notice is
    /// still on then, the next step meets it and pauses again.
    /// </summary>
    public const int LongestPauseDays = 365;

    async Task ApplyAsync(Enrolment e, Sequence sequence, InboundMessage inbound, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        switch (inbound.Kind)
        {
            case EventKind.Reply:
                Stop(e, StopReason.Replied, $"{inbound.FromAddress} answered on {inbound.ReceivedAt:yyyy-MM-dd HH:mm} UTC.");
                if (sequence.StopCompanyOnReply && !FreeMail.Contains(e.Domain))
                {
                    // The company's domain as colleagues may have been enrolled with it: in Unicode or in punycode.
                    var domains = AccountService.StoredForms("x@" + e.Domain).Select(f => f[(f.IndexOf('@') + 1)..]).ToList();
                    var others = await db.Enrolments.Where(o => o.SequenceId == e.SequenceId && domains.Contains(o.Domain) && o.Id != e.Id
                                                                && (o.State == EnrolmentState.Active || o.State == EnrolmentState.Paused)).ToListAsync(ct);
                    foreach (var o in others) Stop(o, StopReason.ColleagueReplied, $"{inbound.FromAddress} at {e.Domain} answered this sequence's mail to {e.Address}.");
                }
                break;
            case EventKind.AutoReply when inbound.Departed && AccountService.SameAddress(inbound.FromAddress, e.Address):
                // "I no longer work at Encom": a pause would only bring the next step to the same robot.
                Stop(e, StopReason.LeftCompany, $"{inbound.FromAddress} is no longer there, says their auto-reply of {inbound.ReceivedAt:yyyy-MM-dd}: {inbound.Reason}");
                break;
            case EventKind.AutoReply:
            {
                var zone = SendTimes.Zone(e.TimeZone) ?? TimeZoneInfo.Utc;
                var step = sequence.Steps.OrderBy(s => s.Position).ElementAtOrDefault(e.NextStep) ?? sequence.Steps.OrderBy(s => s.Position).LastOrDefault() ?? new SequenceStep();
                // Back the day after the date they gave (a robot's "back on Monday" means Monday is still busy), else the
                // default pause; a date further off than the longest pause counts as its last day.
                var latest = DateOnly.FromDateTime(now.UtcDateTime).AddDays(LongestPauseDays);
                var longest = inbound.ReturnDate > latest;
                var resume = inbound.ReturnDate is { } back ? ResumeAt((longest ? latest : back).AddDays(1), inbound.ReturnDateOffsetMinutes, step.WindowStart, zone) : (DateTimeOffset?)null;
                if (resume <= now)
                {
                    // The day they are back has come (a notice left on after the return, or read late): no pause; the
                    // next step keeps its time.
                    e.Note = $"Auto-reply from {inbound.FromAddress} said out of office until {inbound.ReturnDate:yyyy-MM-dd}, which has passed; the sequence goes on.";
                    break;
                }
                var until = resume ?? now.AddDays(Math.Max(1, sequence.AutoReplyPauseDays));
                var pausedLater = e.State == EnrolmentState.Paused && e.PausedUntil > until;
                e.State = EnrolmentState.Paused;
                e.PausedUntil = until;
                var opening = SendTimes.NextOpening(until, step.BusinessDaysOnly, step.WindowStart, step.WindowEnd, zone);
                if (e.NextAt is null || e.NextAt < opening) e.NextAt = opening;
                else if (pausedLater && await OwnTimeAsync(e, step, zone, ct) is { } own)
                {
                    // A newer notice with an earlier return (back early, the notice corrected): the earlier pause had put
                    // the next step off to its own end; it now goes when this pause ends, or at its own time if later.
                    e.NextAt = own > opening ? own : opening;
                }
                e.Note = inbound.ReturnDate is { } d
                    ? $"Out of office until {d:yyyy-MM-dd} (auto-reply from {inbound.FromAddress}); paused until {until:yyyy-MM-dd}{(longest ? $", the longest pause ({LongestPauseDays} days)" : "")}."
                    : $"Auto-reply from {inbound.FromAddress} without a return date; paused for {sequence.AutoReplyPauseDays} days.";
                break;
            }
            case EventKind.Bounce when inbound.Permanent != false:
                Stop(e, StopReason.Bounced, $"The address bounced{(inbound.Status is { } st ? $" ({st})" : "")}: {inbound.Reason}");
                await SuppressAsync(e.TeamId, e.Address, SuppressionReason.Bounced, inbound.Status ?? inbound.Reason, ct);
                break;
            case EventKind.Bounce:
                // Soft: a delay (4.x.x: the server still tries) or a refusal of this mail that does not say the address is
                // dead (5.7.1 spam or policy, a full mailbox): the next step may well be delivered.
                e.Note = inbound.Status is { Length: > 0 } soft && soft[0] == '5'
                    ? $"The recipient's server refused this mail ({soft}) without saying the address is gone: {inbound.Reason}. The sequence goes on."
                    : $"A delivery delay was reported ({inbound.Status ?? "temporary"}); the sequence goes on.";
                break;
            case EventKind.Complaint:
                Stop(e, StopReason.Complained, "The recipient marked the mail as spam.");
                await SuppressAsync(e.TeamId, e.Address, SuppressionReason.Complained, null, ct);
                break;
        }
    }

    /// <summary>
    /// When the enrolment's next step is due by the sequence alone, as <see cref="Advance"/> set it when the step before
    /// was sent; null when that send is not found (then the caller keeps the time it has).
    /// </summary>
    async Task<DateTimeOffset?> OwnTimeAsync(Enrolment e, SequenceStep step, TimeZoneInfo zone, CancellationToken ct)
    {
        if (e.NextStep == 0) return null;
        var sentAt = await db.SequenceSends.Where(s => s.EnrolmentId == e.Id && s.Step == e.NextStep - 1 && s.State == SequenceSendState.Sent)
            .Select(s => (DateTimeOffset?)(s.SentAt ?? s.IntentAt)).FirstOrDefaultAsync(ct);
        return sentAt is { } at ? SendTimes.Due(at, step.DelayDays, step.BusinessDaysOnly, step.WindowStart, step.WindowEnd, zone) : null;
    }

    /// <summary>
    /// The window's opening on <paramref name="day"/> in the enrolment's zone, but not before that day has begun for the
    /// one who wrote the auto-reply: the return date is a day of their calendar (by their Date header's offset), and an
    /// enrolment's zone east of theirs (or UTC for one without a zone) opens while it is still the day before there.
    /// </summary>
    static DateTimeOffset ResumeAt(DateOnly day, int? writerOffsetMinutes, TimeOnly windowStart, TimeZoneInfo zone)
    {
        var inZone = SendTimes.ToInstant(day, windowStart, zone);
        if (writerOffsetMinutes is not { } minutes) return inZone;
        var writersDay = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.FromMinutes(minutes)).ToUniversalTime();
        return writersDay > inZone ? writersDay : inZone;
    }

    void Stop(Enrolment e, StopReason reason, string note)
    {
        e.State = EnrolmentState.Stopped;
        e.StopReason = reason;
        e.Note = note.Length > 1000 ? note[..1000] : note;
        e.NextAt = null;
        e.PausedUntil = null;
        e.UpdatedAt = clock.GetUtcNow();
    }

    public async Task SuppressAsync(Guid teamId, string address, SuppressionReason reason, string? detail, CancellationToken ct)
    {
        // Suppressed already, with the domain written either way (punycode or Unicode).
        var forms = AccountService.StoredForms(address);
        if (await db.Suppressions.AnyAsync(s => s.TeamId == teamId && forms.Contains(s.Address), ct)) return;
        if (db.Suppressions.Local.Any(s => s.TeamId == teamId && AccountService.SameAddress(s.Address, address))) return;
        db.Suppressions.Add(new Suppression
        {
            TeamId = teamId, Address = address, Reason = reason, Detail = detail is { Length: > 1000 } ? detail[..1000] : detail, CreatedAt = clock.GetUtcNow(),
        });
    }

    // ---- leases ----

    /// <summary>
    /// Due enrolments of active sequences this instance now holds. PostgreSQL: one statement with FOR UPDATE SKIP
    /// LOCKED, so instances never wait on each other's rows. SQLite (one writer): a conditional update per row.
    /// </summary>
    public async Task<List<Guid>> ClaimAsync(string owner, CancellationToken ct)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var until = now + o.Lease;
        if (database.Provider == DatabaseProvider.Postgres)
        {
            return await db.Database.SqlQuery<Guid>($"""
                UPDATE "Enrolments" SET "LeaseOwner" = {owner}, "LeaseUntil" = {until}
                WHERE "Id" IN (
                    SELECT e."Id" FROM "Enrolments" e JOIN "Sequences" s ON s."Id" = e."SequenceId"
                    WHERE e."State" IN (0, 1) AND s."Status" = 0 AND e."NextAt" <= {now}
                      AND (e."LeaseUntil" IS NULL OR e."LeaseUntil" < {now})
                    ORDER BY e."NextAt" LIMIT {o.Batch}
                    FOR UPDATE OF e SKIP LOCKED)
                RETURNING "Id" AS "Value"
                """).ToListAsync(ct);
        }
        var candidates = await (from e in db.Enrolments
                                join s in db.Sequences on e.SequenceId equals s.Id
                                where (e.State == EnrolmentState.Active || e.State == EnrolmentState.Paused) && s.Status == SequenceStatus.Active
                                      && e.NextAt <= now && (e.LeaseUntil == null || e.LeaseUntil < now)
                                orderby e.NextAt
                                select e.Id).Take(o.Batch).ToListAsync(ct);
        var claimed = new List<Guid>();
        foreach (var id in candidates)
        {
            var n = await db.Enrolments.Where(e => e.Id == id && (e.LeaseUntil == null || e.LeaseUntil < now))
                .ExecuteUpdateAsync(u => u.SetProperty(e => e.LeaseOwner, owner).SetProperty(e => e.LeaseUntil, until), ct);
            if (n == 1) claimed.Add(id);
        }
        return claimed;
    }

    // ---- one enrolment ----

    async Task ProcessAsync(Guid id, string owner, string baseUrl, CancellationToken ct)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        // Each enrolment from a fresh context: the lease was taken by a bulk update, which an instance tracked earlier
        // (answered in this pass) would hide, and with it the lease's release; the mailbox is read as it is now.
        db.ChangeTracker.Clear();
        // The batch's lease was taken for all of it at once, and the enrolments before this one may have taken long (a
        // look in Sent, a slow server): one whose lease ran out meanwhile may be another instance's by now, or become
        // theirs while this one sends. So the lease is renewed for this enrolment alone, and only while it still holds.
        if (await db.Enrolments.Where(x => x.Id == id && x.LeaseOwner == owner && x.LeaseUntil > now)
                .ExecuteUpdateAsync(u => u.SetProperty(x => x.LeaseUntil, now + o.Lease), ct) == 0)
        {
            log.LogInformation("Sequence enrolment {Enrolment}: its lease ran out before this pass came to it; left to the next pass", id);
            return;
        }
        var e = await db.Enrolments.FirstOrDefaultAsync(x => x.Id == id && x.LeaseOwner == owner, ct);
        if (e is null) return;
        sentMessage = null;
        var threw = false;
        try
        {
            await StepAsync(e, baseUrl, now, o, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            threw = true;
            await LeaveToLeaseAsync(id, ex);
            throw;
        }
        finally
        {
            if (!threw)
            {
                await KeepAnswerStopAsync(e);
                e.LeaseOwner = null;
                e.LeaseUntil = null;
                e.UpdatedAt = clock.GetUtcNow();
                await db.SaveChangesAsync(CancellationToken.None);
            }
        }
        // Once the send time is committed: cached targets here and on other instances measure from it.
        if (sentMessage is { } changed) await targets.MessageChangedAsync(changed, CancellationToken.None);
    }

    /// <summary>
    /// A step that ended in an error would most likely end in it again at once, and its enrolment, due longest ago,
    /// would be at the head of every pass's claim: what the step changed is dropped (as a crash would drop it), the
    /// lease is kept until it runs out (<see cref="SequenceOptions.Lease"/>) as the wait before the next try, and the
    /// note says what happened.
    /// </summary>
    async Task LeaveToLeaseAsync(Guid id, Exception ex)
    {
        db.ChangeTracker.Clear();
        var note = $"Waiting: the last try ended in an error ({ex.Message}); it is tried again in {options.Value.Lease.TotalMinutes:0} minutes.";
        if (note.Length > 1000) note = note[..1000];
        var now = clock.GetUtcNow();
        await db.Enrolments.Where(x => x.Id == id && (x.State == EnrolmentState.Active || x.State == EnrolmentState.Paused))
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.Note, note).SetProperty(x => x.UpdatedAt, now), CancellationToken.None);
    }

    /// <summary>
    /// Answers are applied without the enrolment's lease, so one may have stopped it while this pass was sending its
    /// step. The save after the step writes only what the pass changed, so the stop's state would stand, but not the
    /// rest of it: a last step's completion would overwrite it (the answered enrolment counted as completed), and the
    /// step's next time or a waiting note would replace the stop's. The stop stands whole, with the step recorded as sent.
    /// </summary>
    async Task KeepAnswerStopAsync(Enrolment e)
    {
        if (e.State == EnrolmentState.Stopped) return;
        var stored = await db.Enrolments.AsNoTracking().Where(x => x.Id == e.Id)
            .Select(x => new { x.State, x.StopReason, x.Note }).FirstAsync(CancellationToken.None);
        if (stored.State != EnrolmentState.Stopped) return;
        e.State = EnrolmentState.Stopped;
        e.StopReason = stored.StopReason;
        e.Note = stored.Note;
        e.NextAt = null;
        e.PausedUntil = null;
    }

    /// <summary>The tracked message whose send time this enrolment's step recorded (set by <see cref="RecordSentAsync"/>).</summary>
    Guid? sentMessage;

    async Task StepAsync(Enrolment e, string baseUrl, DateTimeOffset now, SequenceOptions o, CancellationToken ct)
    {
        if (e.State == EnrolmentState.Paused)
        {
            if (e.PausedUntil > now) return;
            e.State = EnrolmentState.Active;
            e.PausedUntil = null;
            e.Note = null;
        }
        if (e.State != EnrolmentState.Active || e.NextAt > now) return;
        var sequence = await db.Sequences.Include(s => s.Steps).AsNoTracking().FirstAsync(s => s.Id == e.SequenceId, ct);
        var steps = sequence.Steps.OrderBy(s => s.Position).ToList();
        if (e.NextStep >= steps.Count)
        {
            Complete(e);
            return;
        }
        var forms = AccountService.StoredForms(e.Address);
        if (await db.Suppressions.AnyAsync(s => s.TeamId == e.TeamId && forms.Contains(s.Address), ct))
        {
            Stop(e, StopReason.Suppressed, $"{e.Address} is on the team's suppression list.");
            return;
        }
        // A deactivated owner's mailbox is not watched (MailboxWatcher): a step sent now could not see the reply that
        // should stop the next one. The enrolment waits, as for a mailbox to reconnect, until a team admin reactivates them.
        var owner = await db.Users.AsNoTracking().Where(u => u.Id == sequence.UserId).Select(u => new { u.Email, u.LockoutEnd }).FirstAsync(ct);
        if (Auth.IsShut(owner.LockoutEnd, now))
        {
            Wait(e, now + o.MailboxRetry, $"{OwnerDeactivated}{owner.Email}, whose sequence this is, is deactivated; it goes on once a team admin reactivates them.");
            return;
        }
        var mailbox = await db.Mailboxes.FirstOrDefaultAsync(m => m.Id == sequence.MailboxId && m.UserId == sequence.UserId, ct);
        if (mailbox is null)
        {
            Stop(e, StopReason.Failed, "The sequence's mailbox was removed; choose another mailbox and enrol again.");
            return;
        }
        if (mailbox.Status != MailboxStatus.Active || services.GetKeyedService<IMailTransport>(mailbox.Kind) is not { } transport)
        {
            Wait(e, now + o.MailboxRetry, $"{MailboxDown}{mailbox.Address} needs to be reconnected.");
            return;
        }
        // Reactivated, or the mailbox connected again: it was not watched (or could not be read) meanwhile, and a reply
        // that came then stops the enrolment only once the watch has read it. Until the watch has gone through the
        // mailbox since this enrolment last waited, it waits on.
        if (!(mailbox.LastSyncAt >= e.UpdatedAt) && services.GetKeyedService<IMailboxWatch>(mailbox.Kind) is not null)
        {
            if (e.Note?.StartsWith(OwnerDeactivated, StringComparison.Ordinal) == true)
            {
                Wait(e, now + o.MailboxRetry, $"{OwnerDeactivated}{owner.Email} is active again; {mailbox.Address} is read for replies that came meanwhile before the next step goes.");
                return;
            }
            if (e.Note?.StartsWith(MailboxDown, StringComparison.Ordinal) == true)
            {
                Wait(e, now + o.MailboxRetry, $"{MailboxDown}{mailbox.Address} is connected again and is read for replies that came meanwhile before the next step goes.");
                return;
            }
        }

        var step = steps[e.NextStep];
        var send = await db.SequenceSends.FirstOrDefaultAsync(s => s.EnrolmentId == e.Id && s.Step == step.Position, ct);
        if (send is { State: SequenceSendState.Sent })
        {
            Advance(e, steps, send.SentAt ?? now);
            return;
        }
        if (send is { State: SequenceSendState.Intent })
        {
            // A pass before this one committed the intent and did not record the outcome: did the mail leave?
            var copy = await db.Copies.AsNoTracking().FirstOrDefaultAsync(c => c.Id == send.CopyId, ct);
            if (copy is null)
            {
                // Its registration is gone. Only this runner removes a step's registration, and only for mail that did
                // not leave (not in Sent, or refused before it was handed over); before that removal and the send's
                // failed state were one transaction, a crash between them left this. It never left: the step is
                // prepared afresh below.
                await DropRegistrationAsync(send, "Its registration was removed, as for a step that did not leave; prepared again.", ct);
            }
            else
            {
                // In the Sent folder of the mailbox it went through: the sequence may have been moved to another since.
                var through = send.MailboxId == mailbox.Id ? mailbox : await db.Mailboxes.FirstOrDefaultAsync(m => m.Id == send.MailboxId, ct);
                var throughTransport = through is null ? null : through.Id == mailbox.Id ? transport : services.GetKeyedService<IMailTransport>(through.Kind);
                bool? left;
                try
                {
                    left = through is null || throughTransport is null ? null : await throughTransport.IsInSentAsync(through, send.MessageIdHeader, copy.PixelToken, ct);
                }
                catch (MailboxException ex)
                {
                    await MailboxTroubleAsync(e, through!, ex, now, o, ct);
                    return;
                }
                if (left is true)
                {
                    log.LogInformation("Step {Step} of enrolment {Enrolment} had left before a restart (found in Sent); not sent again", step.Position, e.Id);
                    await RecordSentAsync(send, null, null, send.IntentAt, ct);
                    Advance(e, steps, send.IntentAt);
                    return;
                }
                if (left is null)
                {
                    Stop(e, StopReason.Failed, $"Step {step.Position + 1} may or may not have left (it was interrupted while being sent, and the Sent folder of {through?.Address ?? "the mailbox it went through"} cannot tell). " +
                                               "Look in your sent mail: if it is not there, enrol the address again, and the step is sent again and the sequence goes on.");
                    return;
                }
                // Not in Sent: it never left. Its registration goes; the step is prepared afresh below. The send is no
                // longer an intent (its copy is gone with the registration): if the step has to wait below (limit,
                // spacing), the next pass must prepare it, not look for a copy that no longer exists.
                await DropRegistrationAsync(send, "Interrupted before it left (not in Sent); prepared again.", ct);
            }
        }

        // Only inside the step's send window: a wait (a mailbox to reconnect, the daily limit, spacing) may end at
        // night or on a weekend, and then the step waits for the window's next opening.
        var zone = SendTimes.Zone(e.TimeZone) ?? TimeZoneInfo.Utc;
        var opening = SendTimes.NextOpening(now, step.BusinessDaysOnly, step.WindowStart, step.WindowEnd, zone);
        if (opening > now)
        {
            e.NextAt = opening;
            return;
        }

        // Limits: a daily ceiling per mailbox, and spacing between sends. The mailbox's next-send time is also its send
        // lock: it is taken atomically (for the spacing, and at least SlotHold) before the day's sends are counted, and
        // set to the spacing once this step's intent is recorded, so no other instance counts the same sends meanwhile.
        // A crash while holding it pauses the mailbox for SlotHold at most. The time is read afresh: the checks above
        // (a look in Sent for an earlier intent) may have taken longer than the hold itself.
        now = clock.GetUtcNow();
        var hold = now + (o.MinSpacing > SlotHold ? o.MinSpacing : SlotHold);
        if (await db.Mailboxes.Where(m => m.Id == mailbox.Id && (m.NextSendAt == null || m.NextSendAt <= now))
                .ExecuteUpdateAsync(u => u.SetProperty(m => m.NextSendAt, hold), ct) == 0)
        {
            var next = await db.Mailboxes.Where(m => m.Id == mailbox.Id).Select(m => m.NextSendAt).FirstAsync(ct);
            e.NextAt = next ?? now + o.MinSpacing;
            return;
        }
        // Given back as it was (no send) on every way out before the intent is recorded.
        await using var slot = new SendSlot(db, mailbox.Id, hold, now);
        var since = now - TimeSpan.FromDays(1);
        // This step's own earlier intent, found not in Sent and failed above, is not saved as failed yet: it does not count.
        var own = send?.Id ?? 0;
        var today = db.SequenceSends.Where(s => s.MailboxId == mailbox.Id && s.IntentAt > since && s.State != SequenceSendState.Failed && s.Id != own);
        if (await today.CountAsync(ct) >= o.DailyLimitPerMailbox)
        {
            var oldest = await today.OrderBy(s => s.IntentAt).Select(s => s.IntentAt).FirstAsync(ct);
            Wait(e, oldest + TimeSpan.FromDays(1), $"Waiting: {mailbox.Address} has sent its {o.DailyLimitPerMailbox} sequence emails for the last 24 hours.");
            return;
        }

        var sender = await db.Users.AsNoTracking().Where(u => u.Id == sequence.UserId).Select(u => new { u.DisplayName, u.Email, u.Role }).FirstAsync(ct);
        var template = await db.Templates.AsNoTracking().FirstOrDefaultAsync(t => t.Id == step.TemplateId, ct);
        if (template is null)
        {
            Stop(e, StopReason.Failed, $"Step {step.Position + 1}'s template was deleted.");
            return;
        }
        var fields = JsonSerializer.Deserialize<Dictionary<string, string>>(e.Fields) ?? [];
        var merged = MergeTemplates.Render(template.Subject, template.Html, SequenceEnroller.Merge(fields, SequenceEnroller.SenderFields(sender.DisplayName, sender.Email)));
        if (!merged.Ok)
        {
            Stop(e, StopReason.Failed, $"Step {step.Position + 1} ('{template.Name}') cannot be written for this recipient: {string.Join(" ", merged.Errors)}");
            return;
        }
        var earlier = await (from s in db.SequenceSends
                             join c in db.Copies on s.CopyId equals c.Id
                             join m in db.Messages on s.TrackedMessageId equals m.Id
                             where s.EnrolmentId == e.Id && s.State == SequenceSendState.Sent && s.Step < step.Position
                             orderby s.Step
                             select new { s.Step, m.Subject, Id = c.SentMessageIdHeader ?? c.MessageIdHeader, c.ProviderThreadId, s.MailboxId }).ToListAsync(ct);
        // A follow-up without a subject of its own answers the first step's; "Re: " is left off a subject already at the
        // length a registration takes.
        var subject = merged.Subject.Length > 0 ? merged.Subject
            : earlier.Count > 0 ? (earlier[0].Subject.StartsWith("Re:", StringComparison.OrdinalIgnoreCase) || earlier[0].Subject.Length + 4 > MessagesApi.MaxSubjectLength
                ? earlier[0].Subject : "Re: " + earlier[0].Subject)
            : "";
        if (subject.Length == 0)
        {
            Stop(e, StopReason.Failed, $"Step {step.Position + 1} has no subject and no earlier step to answer.");
            return;
        }

        // The answers were applied when this pass began, and the steps before this one may have taken a while (a
        // round-trip to a mail server each): a watcher, which runs beside the scheduler, may have stored a reply to
        // this enrolment since. Applied here, just before the intent is recorded, it keeps the step from going. One
        // that lands after this is the case of an answer while the step leaves (KeepAnswerStopAsync). An answer that
        // fails here fails the step; the next pass's ApplyAnswersAsync passes it over.
        if ((await UnappliedAsync(e.Id, ct)).FirstOrDefault() is { Answers: { } meanwhile })
        {
            await ApplyAllAsync(e, sequence, meanwhile, ct);
            if (e.State != EnrolmentState.Active) return;
        }

        var urls = TrackingUrls.For(baseUrl, tracking.Value);
        var unsubscribe = urls.Unsubscribe(e.UnsubscribeToken);
        var html = merged.Html + $"""<p style="font-size:12px;color:#777">Not interested? <a href="{System.Net.WebUtility.HtmlEncode(unsubscribe)}" {TrackedHtml.NoTrackAttribute}>Unsubscribe</a>.</p>""";
        var me = new CurrentUser(sequence.UserId, sequence.TeamId, sender.Role, sender.Email ?? "");
        var (registered, errors) = await MessagesApi.RegisterAsync(
            new MessagesApi.RegisterRequest(mailbox.Address, subject, [e.Address], [], [], html, PerRecipient: true, Source: MessageSource.Sequence),
            me, db, tracking.Value, urls, clock, ct);
        if (registered is null)
        {
            Stop(e, StopReason.Failed, "The step could not be prepared: " + string.Join(" ", errors!.SelectMany(x => x.Value)));
            return;
        }
        var copyResponse = registered.Copies[0];
        if (send is null)
        {
            send = new SequenceSend { EnrolmentId = e.Id, Step = step.Position, MessageIdHeader = "" };
            db.SequenceSends.Add(send);
        }
        send.MailboxId = mailbox.Id;
        send.TrackedMessageId = registered.Id;
        send.CopyId = copyResponse.Id;
        send.MessageIdHeader = copyResponse.MessageId.Trim('<', '>');
        send.State = SequenceSendState.Intent;
        send.IntentAt = now;
        send.Attempts++;
        e.Note = null;
        // The intent is durable before the mail leaves.
        await db.SaveChangesAsync(ct);
        // It counts now: the mailbox's next send waits only for the spacing.
        await slot.ReleaseAsync(now + o.MinSpacing);

        var message = await db.Messages.Include(m => m.Recipients).AsNoTracking().FirstAsync(m => m.Id == registered.Id, ct);
        var from = new MailboxAddress(sender.DisplayName, mailbox.Address);
        var mime = MailSender.Compose(from, message, copyResponse.MessageId, copyResponse.Html, null, now);
        if (earlier.Count > 0)
        {
            mime.InReplyTo = earlier[^1].Id;
            foreach (var x in earlier) mime.References.Add(x.Id);
        }
        if (o.ListUnsubscribeHeader)
        {
            mime.Headers.Add("List-Unsubscribe", $"<{unsubscribe}>");
            mime.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }
        // The thread of the step before, where the mailbox is still the one it went through (a thread id is a mailbox's own).
        var thread = earlier.Count > 0 && earlier[^1].MailboxId == mailbox.Id ? earlier[^1].ProviderThreadId : null;
        var outgoing = new OutgoingCopy(copyResponse.Id, mime, from, [new MailboxAddress(null, e.Address)],
            MailSender.ForSentFolder(from, mime, message, html, null), thread);

        TransportResult result;
        try
        {
            result = await transport.SendAsync(mailbox, [outgoing], ct);
        }
        catch (MailboxException ex)
        {
            // Nothing left; the intent stays, and the next pass finds it not in Sent and prepares the step again.
            await MailboxTroubleAsync(e, mailbox, ex, now, o, ct);
            return;
        }
        var r = result.Copies.Single();
        if (!r.Sent && r.Temporary)
        {
            if (!r.MayHaveLeft)
            {
                // Refused for now and certainly not sent (greylisting, a full mailbox, a rate limit): its registration
                // goes, and the step is prepared again at the next try.
                await DropRegistrationAsync(send, r.Error, ct);
            }
            // Otherwise the intent stays: the next pass looks in Sent before anything goes again.
            await RetryLaterAsync(e, e.NextStep, r.Error ?? "refused for now", now, o, ct);
            return;
        }
        if (!r.Sent)
        {
            Stop(e, StopReason.Failed, $"Step {step.Position + 1} was refused: {r.Error}");
            await DropRegistrationAsync(send, r.Error, ct);
            return;
        }
        await RecordSentAsync(send, r.SentMessageId, r.ProviderThreadId ?? earlier.LastOrDefault()?.ProviderThreadId, now, ct);
        Advance(e, steps, now);
        if (result.Warning is not null) log.LogWarning("Sequence step sent with a warning: {Warning}", result.Warning);
    }

    /// <summary>
    /// The registration of a step that did not leave goes (its tracked message, and with it its copy and links), and
    /// the send is saved as failed, with the enrolment's changes so far, in one transaction. Apart, a crash between
    /// the two left an intent whose copy was gone (see <see cref="StepAsync"/>).
    /// </summary>
    async Task DropRegistrationAsync(SequenceSend send, string? error, CancellationToken ct)
    {
        send.State = SequenceSendState.Failed;
        send.Error = error is { Length: > 1000 } ? error[..1000] : error;
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.Messages.Where(m => m.Id == send.TrackedMessageId).ExecuteDeleteAsync(ct);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        });
    }

    async Task RecordSentAsync(SequenceSend send, string? sentMessageId, string? threadId, DateTimeOffset at, CancellationToken ct)
    {
        send.State = SequenceSendState.Sent;
        send.SentAt = at;
        send.Error = null;
        var copy = await db.Copies.Include(c => c.Links).FirstAsync(c => c.Id == send.CopyId, ct);
        var kept = sentMessageId?.Trim('<', '>');
        if (!string.IsNullOrEmpty(kept) && kept != copy.MessageIdHeader) copy.SentMessageIdHeader = kept;
        if (!string.IsNullOrEmpty(threadId)) copy.ProviderThreadId = threadId;
        // Tracked, not a bulk update: the save reports the send to the outbox in the same transaction.
        var message = await db.Messages.FirstAsync(m => m.Id == send.TrackedMessageId, ct);
        message.SentAt ??= at;
        sentMessage = message.Id;
    }

    async Task MailboxTroubleAsync(Enrolment e, MailboxConnection mailbox, MailboxException ex, DateTimeOffset now, SequenceOptions o, CancellationToken ct)
    {
        if (ex.NeedsReconnect)
        {
            mailbox.Status = MailboxStatus.NeedsReconnect;
            mailbox.StatusMessage = ex.Message.Length > 1000 ? ex.Message[..1000] : ex.Message;
            Wait(e, now + o.MailboxRetry, $"{MailboxDown}{mailbox.Address} needs to be reconnected.");
            return;
        }
        await RetryLaterAsync(e, e.NextStep, ex.Message, now, o, ct);
    }

    /// <summary>Another try after <see cref="SequenceOptions.MailboxRetry"/>, or a stop once the step has had its tries.</summary>
    async Task RetryLaterAsync(Enrolment e, int step, string problem, DateTimeOffset now, SequenceOptions o, CancellationToken ct)
    {
        var attempts = await db.SequenceSends.Where(s => s.EnrolmentId == e.Id && s.Step == step).Select(s => s.Attempts).FirstOrDefaultAsync(ct);
        if (attempts >= o.MaxAttempts)
        {
            Stop(e, StopReason.Failed, $"Step {step + 1} failed {attempts} times: {problem}");
            return;
        }
        Wait(e, now + o.MailboxRetry, $"Waiting: sending failed ({problem}); trying again.");
    }

    /// <summary>How long a mailbox's send lock is held at most while a step is prepared (see <see cref="SendSlot"/>).</summary>
    static readonly TimeSpan SlotHold = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A mailbox's send lock (its <see cref="MailboxConnection.NextSendAt"/>, set to <c>hold</c>), given back to
    /// <c>free</c> when disposed unless released to the spacing first; only while it is still the value this pass set.
    /// </summary>
    sealed class SendSlot(AppDbContext db, Guid mailboxId, DateTimeOffset hold, DateTimeOffset free) : IAsyncDisposable
    {
        bool released;

        public async Task ReleaseAsync(DateTimeOffset next)
        {
            released = true;
            await db.Mailboxes.Where(m => m.Id == mailboxId && m.NextSendAt == hold)
                .ExecuteUpdateAsync(u => u.SetProperty(m => m.NextSendAt, next), CancellationToken.None);
        }

        public async ValueTask DisposeAsync()
        {
            if (!released) await ReleaseAsync(free);
        }
    }

    /// <summary>How the note of an enrolment waiting because its owner is (or was until lately) deactivated begins.</summary>
    const string OwnerDeactivated = "Waiting (owner deactivated): ";

    /// <summary>How the note of an enrolment waiting for its mailbox to be connected again starts.</summary>
    const string MailboxDown = "Waiting: the mailbox ";

    static void Wait(Enrolment e, DateTimeOffset until, string note)
    {
        e.NextAt = until;
        e.Note = note.Length > 1000 ? note[..1000] : note;
    }

    void Advance(Enrolment e, List<SequenceStep> steps, DateTimeOffset sentAt)
    {
        e.NextStep++;
        e.Note = null;
        if (e.NextStep >= steps.Count)
        {
            Complete(e);
            return;
        }
        var next = steps[e.NextStep];
        var zone = SendTimes.Zone(e.TimeZone) ?? TimeZoneInfo.Utc;
        e.NextAt = SendTimes.Due(sentAt, next.DelayDays, next.BusinessDaysOnly, next.WindowStart, next.WindowEnd, zone);
    }

    static void Complete(Enrolment e)
    {
        e.State = EnrolmentState.Completed;
        e.NextAt = null;
        e.Note = "Every step was sent.";
    }
}
