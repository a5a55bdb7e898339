using System.Text.Json;
using EmailTracking.Tests.Classification;
using EmailTracking.Tests.Infrastructure;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary><c>et classify FILE…</c>, run as the real CLI process.</summary>
public sealed class ClassifyCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("et-classify-").FullName;

    // A database setting that would fail at once if the command touched the database: it must not need one.
    private static readonly Dictionary<string, string> NoDatabase = new() { ["Database__Provider"] = "no-such-provider" };

    [Fact]
    public async Task A_read_receipt_and_a_delivery_notice_print_as_receipts_with_what_they_report()
    {
        var read = Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "receipt", "thunderbird-return-receipt-displayed.eml");
        var deleted = Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "receipt", "exchange-not-read-deleted.eml");
        var delivered = SharedData.Path("sisimai", "bsd", "lhost-amazonses-12.eml");
        var person = Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "human", "gmail-en-subject-read-colon.eml");

        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, NoDatabase, "classify", read, deleted, delivered, person);
        output.WriteLine(stdout);
        output.WriteLine(stderr);

        Assert.Equal(0, code);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["receipt", "receipt", "receipt", "human"], rows.Select(r => r.GetProperty("kind").GetString()));
        Assert.Equal(["displayed", "deleted", "delivered", null], rows.Select(r => r.GetProperty("disposition").GetString()));
        Assert.Equal([true, false, false, false], rows.Select(r => r.GetProperty("opened").GetBoolean()));
        Assert.Equal("4f0c2b9e8d7a41c6b5e3f2a1d0c9b8a7@track.sellerco.example", rows[0].GetProperty("original_message_id").GetString());
        var reader = Assert.Single(rows[0].GetProperty("recipients").EnumerateArray());
        Assert.Equal(("lora@buyer.example", "delivered"), (reader.GetProperty("address").GetString(), reader.GetProperty("cause").GetString()));
        Assert.Equal("success@simulator.amazonses.com", Assert.Single(rows[2].GetProperty("recipients").EnumerateArray()).GetProperty("address").GetString());
        // Receipts are no bounces: no status or permanence of their own.
        Assert.All(rows.Take(3), r => Assert.Equal(JsonValueKind.Null, r.GetProperty("permanent").ValueKind));
    }

    [Fact]
    public async Task Prints_one_json_line_per_file_and_fails_only_for_the_missing_one()
    {
        var bounce = SharedData.Path("sisimai", "bsd", "lhost-sendmail-01.eml");
        var autoReply = SharedData.Path("sisimai", "bsd", "rfc3834-01.eml");
        var complaint = SharedData.Path("sisimai", "bsd", "arf-02.eml");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "auto", "fr-de-retour-le.eml"), Path.Combine(dir, "absent.eml"));
        var relative = "absent.eml"; // printed exactly as given, relative to the working directory
        var garbage = Path.Combine(dir, "garbage.eml");
        await File.WriteAllBytesAsync(garbage, [0, 1, 2, 3, 255, 254, 0, 0]);
        var missing = Path.Combine(dir, "does-not-exist.eml");

        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, NoDatabase, "classify", bounce, relative, missing, autoReply, complaint, garbage);
        output.WriteLine(stdout);
        output.WriteLine(stderr);

        Assert.Equal(2, code);
        Assert.Contains("does-not-exist.eml", stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(6, lines.Length);
        var rows = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([bounce, relative, missing, autoReply, complaint, garbage], rows.Select(r => r.GetProperty("file").GetString()));
        Assert.Equal(["bounce", "auto_reply", "unparseable", "auto_reply", "complaint", "unparseable"], rows.Select(r => r.GetProperty("kind").GetString()));
        foreach (var row in rows)
        {
            foreach (var field in (string[])["reason", "recipients", "status", "permanent", "original_message_id", "return_date", "departed", "disposition", "opened"])
                Assert.True(row.TryGetProperty(field, out _), $"{field} missing in {row}");
            Assert.False(string.IsNullOrWhiteSpace(row.GetProperty("reason").GetString()));
        }

        var b = rows[0];
        var recipient = Assert.Single(b.GetProperty("recipients").EnumerateArray());
        Assert.Equal("5.1.1", b.GetProperty("status").GetString());
        Assert.True(b.GetProperty("permanent").GetBoolean());
        Assert.Equal(b.GetProperty("status").GetString(), recipient.GetProperty("status").GetString());
        Assert.Equal("user_unknown", recipient.GetProperty("cause").GetString());
        Assert.Contains("@", recipient.GetProperty("address").GetString());
        Assert.False(string.IsNullOrEmpty(b.GetProperty("original_message_id").GetString()));

        Assert.Equal("2026-01-05", rows[1].GetProperty("return_date").GetString());
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("status").ValueKind);
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("permanent").ValueKind);
        Assert.Equal(0, rows[1].GetProperty("recipients").GetArrayLength());

        Assert.Equal("file not found", rows[2].GetProperty("reason").GetString());
        Assert.Equal("this-local-part-does-not-exist-on-yahoo@yahoo.com",
            Assert.Single(rows[4].GetProperty("recipients").EnumerateArray()).GetProperty("address").GetString());
    }

    [Fact]
    public async Task An_empty_argument_or_a_directory_gets_a_json_line_with_the_reason_and_the_next_file_is_still_classified()
    {
        var sub = Directory.CreateDirectory(Path.Combine(dir, "a-folder")).FullName;
        var good = SharedData.Path("sisimai", "bsd", "rfc3834-01.eml");

        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, NoDatabase, "classify", "", sub, good);
        output.WriteLine(stdout);
        output.WriteLine(stderr);

        Assert.Equal(2, code);
        Assert.DoesNotContain("Unhandled exception", stderr);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal(["", sub, good], rows.Select(r => r.GetProperty("file").GetString()));
        Assert.Equal(["unparseable", "unparseable", "auto_reply"], rows.Select(r => r.GetProperty("kind").GetString()));
        Assert.Equal("no file name given (an empty argument)", rows[0].GetProperty("reason").GetString());
        Assert.Equal("a directory, not a file", rows[1].GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Exits_zero_when_every_file_was_read()
    {
        var (code, stdout, _) = await ServerProcess.RunCliAsync(dir, NoDatabase, "classify", SharedData.Path("sisimai", "not", "is-not-bounce-01.eml"));
        Assert.Equal(0, code);
        Assert.Equal("human", JsonDocument.Parse(stdout.Trim()).RootElement.GetProperty("kind").GetString());
    }

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
