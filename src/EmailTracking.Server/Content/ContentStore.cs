using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// Files on disk, named by their SHA-256: `objects/ab/abcdef…` for files and `thumbs/abcdef…/N.png` for a PDF's page
/// thumbnails. Nothing from a request becomes a path: names are checked to be 64 hex digits and page numbers are
/// integers. Work happens in `tmp/` under the same root, so that a finished file is put in place by a rename.
/// </summary>
public sealed class ContentStore
{
    readonly string root;
    readonly string objects;
    readonly string thumbs;
    readonly string tmp;

    public ContentStore(IOptions<ContentOptions> options)
    {
        root = Path.GetFullPath(options.Value.StorePath);
        objects = Path.Combine(root, "objects");
        thumbs = Path.Combine(root, "thumbs");
        tmp = Path.Combine(root, "tmp");
        Directory.CreateDirectory(objects);
        Directory.CreateDirectory(thumbs);
        Directory.CreateDirectory(tmp);
    }

    /// <summary>A fresh directory for one upload's work; the caller deletes it.</summary>
    public string NewWorkDirectory() => Directory.CreateDirectory(Path.Combine(tmp, Guid.NewGuid().ToString("N"))).FullName;

    /// <summary>Removes work directories left by a process that died mid-upload (<see cref="ContentWorkSweeper"/> calls it).</summary>
    public void RemoveStaleWork(TimeSpan olderThan)
    {
        foreach (var dir in Directory.EnumerateDirectories(tmp))
        {
            if (Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow - olderThan)
            {
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    public static async Task<string> HashAsync(string file, CancellationToken ct)
    {
        await using var f = File.OpenRead(file);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(f, ct));
    }

    /// <summary>Moves a finished file into the store under its hash (a file already there is kept).</summary>
    public async Task<(string Sha256, long Size)> AddAsync(string file, CancellationToken ct)
    {
        var sha = await HashAsync(file, ct);
        var size = new FileInfo(file).Length;
        var target = ObjectPath(sha);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (!File.Exists(target))
        {
            try { File.Move(file, target); }
            catch (IOException) when (File.Exists(target)) { } // the same bytes arrived at the same time
        }
        return (sha, size);
    }

    /// <summary>Moves a directory of rendered thumbnails into place for a PDF (one already there is kept).</summary>
    public void AddThumbnails(string pdfSha256, string directory)
    {
        var target = Path.Combine(thumbs, CheckHash(pdfSha256));
        if (Directory.Exists(target)) return;
        try { Directory.Move(directory, target); }
        catch (IOException) when (Directory.Exists(target)) { }
    }

    /// <summary>Removes a PDF's thumbnails (when no library entry shows that PDF any more).</summary>
    public void RemoveThumbnails(string pdfSha256)
    {
        var dir = Path.Combine(thumbs, CheckHash(pdfSha256));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    public string ObjectPath(string sha256)
    {
        var sha = CheckHash(sha256);
        return Path.Combine(objects, sha[..2], sha);
    }

    public bool Exists(string sha256) => File.Exists(ObjectPath(sha256));

    /// <summary>The thumbnail of a page, or null when there is none.</summary>
    public string? ThumbnailPath(string pdfSha256, int page)
    {
        if (page < 1) return null;
        var path = Path.Combine(thumbs, CheckHash(pdfSha256), page.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".png");
        return File.Exists(path) ? path : null;
    }

    static string CheckHash(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            throw new ArgumentException("Not a content hash.", nameof(sha256));
        return sha256;
    }
}

/// <summary>
/// Removes the work directories of uploads whose server died before it could (killed, or out of memory, mid-conversion):
/// each may hold the upload, LibreOffice's profile, a PDF and its thumbnails. At start, and then every hour for the
/// directories other instances sharing the store left.
/// </summary>
public sealed class ContentWorkSweeper(ContentStore store, ILogger<ContentWorkSweeper> log) : BackgroundService
{
    /// <summary>
    /// Older than any upload still at work: the longest takes a few minutes (a conversion's deadline and the PDF tools'),
    /// and a directory's time moves whenever a step adds or removes a file in it.
    /// </summary>
    static readonly TimeSpan Stale = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        do
        {
            try { store.RemoveStaleWork(Stale); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log.LogWarning(e, "Stale upload work not removed"); }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
