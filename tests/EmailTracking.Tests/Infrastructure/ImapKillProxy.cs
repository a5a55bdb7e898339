using System.Net.Sockets;
using System.Text;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test IMAP server that can stand for a crash at an exact moment: once armed, when the
/// IMAP server answers OK to a given command (an APPEND: the Sent copy is now stored; a UID STORE: its flags are
/// changed), the proxy calls the given action — the test kills the product's server there — before that answer is
/// passed on. Plain IMAP only.
/// </summary>
public sealed class ImapKillProxy(string host, int port) : ImapProxy(host, port)
{
    Action? onAppendStored;
    string armedCommand = "APPEND";

    /// <summary>How many of the armed command the server has answered OK.</summary>
    public int AppendsSeen { get; private set; }

    /// <summary>The next OK to <paramref name="command"/> ("APPEND", "UID STORE") calls this (once); that OK is never passed on.</summary>
    public void Arm(Action onStored, string command = "APPEND")
    {
        armedCommand = command;
        onAppendStored = onStored;
    }

    protected override async Task RelayAsync(NetworkStream fromClient, NetworkStream fromServer)
    {
        var appendTags = new HashSet<string>();
        var up = Task.Run(async () =>
        {
            // Client to server: pass bytes on; note the tags of the armed command (lines start "<tag> APPEND ").
            var buffer = new byte[16384];
            var line = new StringBuilder();
            int n;
            while ((n = await fromClient.ReadAsync(buffer, Stop.Token)) > 0)
            {
                foreach (var b in buffer.AsSpan(0, n))
                {
                    if (b == '\n')
                    {
                        var text = line.ToString();
                        var parts = text.Split(' ', 3);
                        if (parts.Length >= 2 && text[(parts[0].Length + 1)..].StartsWith(armedCommand + " ", StringComparison.OrdinalIgnoreCase))
                            lock (appendTags) appendTags.Add(parts[0]);
                        line.Clear();
                    }
                    else if (line.Length < 4096)
                    {
                        line.Append((char)b);
                    }
                }
                await fromServer.WriteAsync(buffer.AsMemory(0, n), Stop.Token);
            }
        });
        var down = Task.Run(async () =>
        {
            // Server to client, line by line so that an APPEND's tagged OK can be held back.
            var buffer = new byte[16384];
            var pending = new List<byte>();
            int n;
            while ((n = await fromServer.ReadAsync(buffer, Stop.Token)) > 0)
            {
                pending.AddRange(buffer.AsSpan(0, n).ToArray());
                int nl;
                while ((nl = pending.IndexOf((byte)'\n')) >= 0)
                {
                    var chunk = pending.GetRange(0, nl + 1).ToArray();
                    pending.RemoveRange(0, nl + 1);
                    var text = Encoding.ASCII.GetString(chunk);
                    var parts = text.Split(' ', 3);
                    bool isAppendOk;
                    lock (appendTags) isAppendOk = parts.Length >= 2 && appendTags.Contains(parts[0]) && parts[1].Equals("OK", StringComparison.OrdinalIgnoreCase);
                    if (isAppendOk)
                    {
                        AppendsSeen++;
                        if (Interlocked.Exchange(ref onAppendStored, null) is { } crash)
                        {
                            crash();
                            return;
                        }
                    }
                    await fromClient.WriteAsync(chunk, Stop.Token);
                }
            }
        });
        await Task.WhenAny(up, down);
    }
}
