using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// An IMAP server with several folders, as far as the IMAP watch uses one (IMAP4rev1 without extensions by default, no
/// IDLE, so the watch polls): any login, LIST with the folders' attributes (special-use ones included, as Dovecot sends
/// them in a plain LIST), STATUS, EXAMINE, UID SEARCH (SINCE, UID ranges), UID FETCH of summaries, bodies and headers. A
/// folder can refuse to be opened, and a message can be announced (RFC822.SIZE) smaller than it is sent. Every command is
/// logged with the folder selected at the time. With <see cref="Idle"/> it IDLEs (RFC 2177), telling of new mail in the
/// selected folder with EXISTS; with <see cref="Notify"/> it also takes NOTIFY (RFC 5465): after NOTIFY SET it tells
/// only of what was asked for, new mail in the selected folder with EXISTS (SELECTED, SELECTED-DELAYED) and in the other
/// folders a filter covers (PERSONAL, INBOXES, SUBSCRIBED, SUBTREE, MAILBOXES) with an unsolicited STATUS (MESSAGES,
/// UIDNEXT, UIDVALIDITY). It tells while the client IDLEs, and otherwise before its next command's answer.
/// </summary>
public sealed partial class ScriptedImapServer : IAsyncDisposable
{
    public sealed class Folder(string name, string attributes = "\\HasNoChildren")
    {
        public string Name { get; } = name;
        public string Attributes { get; } = attributes;
        public uint UidValidity { get; set; } = 7;
        public uint UidNext { get; set; } = 1;

        /// <summary>EXAMINE, SELECT and STATUS answer NO, as for a folder the user may see but not open.</summary>
        public bool Refuse { get; set; }

        public List<(uint Uid, byte[] Bytes, uint Announced)> Messages { get; } = [];
    }

    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource stop = new();
    readonly Task accepting;
    readonly object gate = new();
    readonly List<Folder> folders = [];
    readonly List<Session> sessions = [];

    /// <summary>Announce and take IDLE.</summary>
    public bool Idle { get; set; }

    /// <summary>Announce and take NOTIFY (with IDLE, which a client needs to hear of changes between its commands).</summary>
    public bool Notify { get; set; }

    /// <summary>Answer NOTIFY with this instead (e.g. "NO [NOTIFICATIONOVERFLOW] too many folders"), as a server that will not.</summary>
    public string? RefuseNotify { get; set; }

    string Capabilities => "IMAP4rev1" + (Idle || Notify ? " IDLE" : "") + (Notify ? " NOTIFY" : "");

    /// <summary>One connection: its selected folder, what NOTIFY asked for, and the folders changed since it was last told.</summary>
    sealed class Session
    {
        public Folder? Selected;

        /// <summary>Null until NOTIFY: the selected folder only, and only with IDLE on.</summary>
        public NotifySettings? Notify;
        public readonly HashSet<Folder> Changed = [];
        public readonly SemaphoreSlim Signal = new(0);
    }

    sealed record NotifySettings(bool SelectedNew, List<(string Filter, List<string> Names)> Others);

    /// <summary>"{folder} {command}" for each command, e.g. "Customers UID FETCH 3 (BODY.PEEK[])" or "- EXAMINE Junk".</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    public ScriptedImapServer(params Folder[] initial)
    {
        folders.Add(new Folder("INBOX"));
        folders.AddRange(initial);
        listener.Start();
        accepting = Task.Run(AcceptAsync);
    }

    public Folder this[string name]
    {
        get { lock (gate) return folders.Single(f => f.Name == name); }
    }

    public void AddFolder(Folder folder)
    {
        lock (gate) folders.Add(folder);
    }

    public void RemoveFolder(string name)
    {
        lock (gate) folders.RemoveAll(f => f.Name == name);
    }

    /// <summary>Files the message in the folder with the next UID; <paramref name="announced"/> is its RFC822.SIZE (its real size by default).</summary>
    public uint Deliver(string folder, MimeMessage message, uint? announced = null)
    {
        using var ms = new MemoryStream();
        message.WriteTo(FormatOptions.Default.Clone(), ms);
        return Deliver(folder, ms.ToArray(), announced);
    }

    public uint Deliver(string folder, byte[] bytes, uint? announced = null)
    {
        lock (gate)
        {
            var f = folders.Single(f => f.Name == folder);
            var uid = f.UidNext++;
            f.Messages.Add((uid, bytes, announced ?? (uint)bytes.Length));
            foreach (var session in sessions)
            {
                if (session.Changed.Add(f)) session.Signal.Release();
            }
            return uid;
        }
    }

    /// <summary>The commands that fetched a message's body or headers, as "{folder} {uid}".</summary>
    public List<string> BodiesFetched() =>
        [.. Log.Select(l => FetchedBody().Match(l)).Where(m => m.Success).Select(m => $"{m.Groups["folder"].Value} {m.Groups["uid"].Value}")];

    [GeneratedRegex(@"^(?<folder>.+) UID FETCH (?<uid>\d+) \(?(UID )?BODY\.PEEK\[(HEADER)?\]", RegexOptions.IgnoreCase)]
    private static partial Regex FetchedBody();

    /// <summary>The folders opened (EXAMINE or SELECT), in order.</summary>
    public List<string> Opened() =>
        [.. Log.Select(l => OpenedFolder().Match(l)).Where(m => m.Success).Select(m => Unquote(m.Groups["name"].Value))];

    [GeneratedRegex(@"^.+? (EXAMINE|SELECT) (?<name>.+)$", RegexOptions.IgnoreCase)]
    private static partial Regex OpenedFolder();

    async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient tcp;
            try
            {
                tcp = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(tcp, stop.Token));
        }
    }

    async Task ServeAsync(TcpClient tcp, CancellationToken ct)
    {
        using var _ = tcp;
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII);
        async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
        var session = new Session();
        lock (gate) sessions.Add(session);
        Folder? selected = null;

        // What this connection is to be told of the folders changed since it was last told, as RFC 5465 (or, before any
        // NOTIFY, RFC 3501 with IDLE) has it.
        async Task TellAsync()
        {
            var lines = new List<string>();
            lock (gate)
            {
                foreach (var f in session.Changed)
                {
                    if (f == session.Selected)
                    {
                        if (session.Notify is { SelectedNew: true } || (session.Notify is null && (Idle || Notify))) lines.Add($"* {f.Messages.Count} EXISTS");
                    }
                    else if (session.Notify is { } n && n.Others.Any(g => Covers(g, f.Name)))
                    {
                        lines.Add($"* STATUS {Quote(f.Name)} (MESSAGES {f.Messages.Count} UIDNEXT {f.UidNext} UIDVALIDITY {f.UidValidity})");
                    }
                }
                session.Changed.Clear();
            }
            foreach (var l in lines) await Say(l);
        }

        try
        {
            await Say($"* OK [CAPABILITY {Capabilities}] ready");
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                var space = line.IndexOf(' ');
                var tag = line[..space];
                var rest = line[(space + 1)..];
                var words = rest.Split(' ');
                var command = words[0].ToUpperInvariant();
                if (command == "UID") command += " " + words.ElementAtOrDefault(1)?.ToUpperInvariant();
                var args = Arguments(rest[command.Length..]);
                Log.Enqueue($"{selected?.Name ?? "-"} {rest}");
                await TellAsync();
                switch (command)
                {
                    case "CAPABILITY": await Say($"* CAPABILITY {Capabilities}"); await Say($"{tag} OK done"); break;
                    case "LOGIN": await Say($"{tag} OK [CAPABILITY {Capabilities}] logged in"); break;
                    case "IDLE" when Idle || Notify:
                    {
                        await Say("+ idling");
                        var done = reader.ReadLineAsync(ct).AsTask();
                        using (var stopWaiting = CancellationTokenSource.CreateLinkedTokenSource(ct))
                        {
                            while (true)
                            {
                                await TellAsync();
                                var signal = session.Signal.WaitAsync(stopWaiting.Token);
                                if (await Task.WhenAny(done, signal) == done) break;
                            }
                            // A wait left pending would take the next signal from the next IDLE.
                            await stopWaiting.CancelAsync();
                        }
                        if (await done is null) return;
                        await TellAsync();
                        await Say($"{tag} OK idle done");
                        break;
                    }
                    case "NOTIFY" when Notify:
                    {
                        if (RefuseNotify is not null) { await Say($"{tag} {RefuseNotify}"); break; }
                        if (ParseNotify(rest["NOTIFY".Length..]) is not { } settings) { await Say($"{tag} BAD [CLIENTBUG] not a NOTIFY this server takes"); break; }
                        lock (gate) session.Notify = settings;
                        await Say($"{tag} OK NOTIFY completed");
                        break;
                    }
                    case "LIST":
                    {
                        var pattern = args.ElementAtOrDefault(1) ?? "";
                        if (pattern == "") await Say("* LIST (\\Noselect) \"/\" \"\"");
                        else
                        {
                            var like = new Regex("^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("%", "[^/]*") + "$", RegexOptions.IgnoreCase);
                            List<Folder> matching;
                            lock (gate) matching = [.. folders.Where(f => like.IsMatch(f.Name))];
                            foreach (var f in matching) await Say($"* LIST ({f.Attributes}) \"/\" {Quote(f.Name)}");
                        }
                        await Say($"{tag} OK done");
                        break;
                    }
                    case "STATUS":
                    {
                        var f = Find(args[0]);
                        if (f is null) { await Say($"{tag} NO [NONEXISTENT] no such folder"); break; }
                        if (f.Refuse) { await Say($"{tag} NO [NOPERM] you may not open this folder"); break; }
                        await Say($"* STATUS {Quote(f.Name)} (UIDNEXT {f.UidNext} UIDVALIDITY {f.UidValidity})");
                        await Say($"{tag} OK done");
                        break;
                    }
                    case "SELECT": case "EXAMINE":
                    {
                        var f = Find(args[0]);
                        selected = null;
                        lock (gate) session.Selected = null;
                        if (f is null) { await Say($"{tag} NO [NONEXISTENT] no such folder"); break; }
                        if (f.Refuse) { await Say($"{tag} NO [NOPERM] you may not open this folder"); break; }
                        selected = f;
                        int count;
                        lock (gate)
                        {
                            session.Selected = f;
                            // Its EXISTS below tells all there is.
                            session.Changed.Remove(f);
                            count = f.Messages.Count;
                        }
                        await Say($"* {count} EXISTS"); await Say("* 0 RECENT");
                        await Say($"* OK [UIDVALIDITY {f.UidValidity}] ok"); await Say($"* OK [UIDNEXT {f.UidNext}] ok");
                        await Say($"{tag} OK [READ-ONLY] selected");
                        break;
                    }
                    case "UID SEARCH":
                    {
                        List<uint> uids;
                        lock (gate) uids = [.. (selected?.Messages ?? []).Select(m => m.Uid)];
                        var range = args.IndexOf("UID") is var i and >= 0 ? args[i + 1] : null;
                        if (range is not null) uids = [.. uids.Where(u => InSet(range, u, uids))];
                        await Say("* SEARCH" + string.Concat(uids.Select(u => " " + u.ToString(CultureInfo.InvariantCulture))));
                        await Say($"{tag} OK done");
                        break;
                    }
                    case "UID FETCH":
                    {
                        var set = args[0];
                        var what = rest.ToUpperInvariant();
                        List<(int Seq, uint Uid, byte[] Bytes, uint Announced)> found;
                        lock (gate) found = [.. (selected?.Messages ?? []).Select((m, i) => (i + 1, m.Uid, m.Bytes, m.Announced)).Where(m => InSet(set, m.Uid, [.. selected!.Messages.Select(x => x.Uid)]))];
                        foreach (var m in found)
                        {
                            if (what.Contains("BODY.PEEK[HEADER]", StringComparison.Ordinal) || what.Contains("BODY.PEEK[]", StringComparison.Ordinal))
                            {
                                var header = what.Contains("[HEADER]", StringComparison.Ordinal);
                                var bytes = header ? Header(m.Bytes) : m.Bytes;
                                await stream.WriteAsync(Encoding.ASCII.GetBytes($"* {m.Seq} FETCH (UID {m.Uid} BODY[{(header ? "HEADER" : "")}] {{{bytes.Length}}}\r\n"), ct);
                                await stream.WriteAsync(bytes, ct);
                                await Say(")");
                            }
                            else
                            {
                                await Say($"* {m.Seq} FETCH (UID {m.Uid} RFC822.SIZE {m.Announced} INTERNALDATE \"{DateTimeOffset.UtcNow.ToString("dd-MMM-yyyy HH:mm:ss", CultureInfo.InvariantCulture)} +0000\")");
                            }
                        }
                        await Say($"{tag} OK done");
                        break;
                    }
                    case "LOGOUT": await Say("* BYE"); await Say($"{tag} OK bye"); return;
                    default: await Say($"{tag} OK done"); break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The watch hung up, or the test is over.
        }
        finally
        {
            lock (gate) sessions.Remove(session);
        }
    }

    static bool Covers((string Filter, List<string> Names) group, string folder) => group.Filter switch
    {
        "PERSONAL" or "INBOXES" or "SUBSCRIBED" => true,
        "SUBTREE" => group.Names.Any(n => folder == n || folder.StartsWith(n + "/", StringComparison.Ordinal)),
        "MAILBOXES" => group.Names.Contains(folder),
        _ => false,
    };

    /// <summary>
    /// "SET [STATUS] (filter [names] events)..." or "NONE" (RFC 5465 section 8), as far as new mail goes; null for what
    /// the RFC calls a BAD: no group, MessageNew without MessageExpunge or the other way, a filter it does not name.
    /// </summary>
    static NotifySettings? ParseNotify(string text)
    {
        var items = Parse(text);
        if (items is ["NONE"]) return new NotifySettings(false, []);
        if (items.Count < 2 || items[0] is not "SET") return null;
        var selectedNew = false;
        var others = new List<(string, List<string>)>();
        foreach (var item in items.Skip(items[1] is "STATUS" ? 2 : 1))
        {
            if (item is not List<object> { Count: >= 2 } group || group[0] is not string filter) return null;
            filter = filter.ToUpperInvariant();
            var named = filter is "SUBTREE" or "MAILBOXES";
            if (group.Count != (named ? 3 : 2)) return null;
            var names = !named ? [] : group[1] is List<object> list ? list.Select(n => (string)n).ToList() : [(string)group[1]];
            var events = group[^1] is List<object> e ? e.OfType<string>().Select(x => x.ToUpperInvariant()).ToList() : [];
            if (events.Contains("MESSAGENEW") != events.Contains("MESSAGEEXPUNGE")) return null;
            var messageNew = events.Contains("MESSAGENEW");
            if (filter is "SELECTED" or "SELECTED-DELAYED") selectedNew = messageNew;
            else if (filter is "PERSONAL" or "INBOXES" or "SUBSCRIBED" || named) { if (messageNew) others.Add((filter, names)); }
            else return null;
        }
        return new NotifySettings(selectedNew, others);
    }

    /// <summary>Atoms, quoted strings and parenthesised lists (nested), as a NOTIFY's arguments have them.</summary>
    static List<object> Parse(string text)
    {
        var i = 0;
        List<object> ReadList(bool nested)
        {
            var list = new List<object>();
            while (i < text.Length)
            {
                var c = text[i];
                if (c == ' ') { i++; continue; }
                if (c == ')') { i++; if (nested) return list; continue; }
                if (c == '(') { i++; list.Add(ReadList(true)); continue; }
                if (c == '"')
                {
                    var sb = new StringBuilder();
                    for (i++; i < text.Length && text[i] != '"'; i++)
                    {
                        if (text[i] == '\\' && i + 1 < text.Length) i++;
                        sb.Append(text[i]);
                    }
                    i++;
                    list.Add(sb.ToString());
                    continue;
                }
                var start = i;
                while (i < text.Length && text[i] is not (' ' or '(' or ')')) i++;
                list.Add(text[start..i]);
            }
            return list;
        }
        return ReadList(false);
    }

    Folder? Find(string name)
    {
        lock (gate) return folders.FirstOrDefault(f => f.Name.Equals(name, StringComparison.Ordinal) || (name.Equals("INBOX", StringComparison.OrdinalIgnoreCase) && f.Name == "INBOX"));
    }

    static byte[] Header(byte[] message)
    {
        var end = message.AsSpan().IndexOf("\r\n\r\n"u8);
        return end < 0 ? message : message[..(end + 4)];
    }

    /// <summary>Whether <paramref name="uid"/> is in an IMAP sequence set such as "1:3,7,9:*" (* is the largest UID there is).</summary>
    static bool InSet(string set, uint uid, List<uint> all)
    {
        var max = all.Count == 0 ? 0 : all.Max();
        uint Value(string v) => v == "*" ? max : uint.Parse(v, CultureInfo.InvariantCulture);
        foreach (var part in set.Split(','))
        {
            var ends = part.Split(':');
            var (a, b) = (Value(ends[0]), Value(ends[^1]));
            if (uid >= Math.Min(a, b) && uid <= Math.Max(a, b)) return true;
        }
        return false;
    }

    /// <summary>The atoms and quoted strings of a command's arguments (parenthesised lists as single words, unparsed).</summary>
    static List<string> Arguments(string text)
    {
        var list = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == ' ') { i++; continue; }
            if (text[i] == '"')
            {
                var sb = new StringBuilder();
                for (i++; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\' && i + 1 < text.Length) i++;
                    sb.Append(text[i]);
                }
                i++;
                list.Add(sb.ToString());
                continue;
            }
            var start = i;
            var depth = 0;
            while (i < text.Length && (text[i] != ' ' || depth > 0))
            {
                if (text[i] == '(') depth++;
                if (text[i] == ')') depth--;
                i++;
            }
            list.Add(text[start..i]);
        }
        return list;
    }

    static string Quote(string name) => "\"" + name.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    static string Unquote(string name) => name.Length >= 2 && name[0] == '"' ? name[1..^1].Replace("\\\"", "\"").Replace("\\\\", "\\") : name;

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        await accepting;
        stop.Dispose();
    }
}
