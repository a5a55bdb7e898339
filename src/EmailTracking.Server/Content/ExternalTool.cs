using System.ComponentModel;
using System.Diagnostics;

namespace EmailTracking.Server.Content;

/// <summary>
/// Runs LibreOffice, Poppler, qpdf or the PDF check: output drained, a deadline, the whole process tree killed on
/// overrun, and optionally a cap on the memory the program may take.
/// </summary>
public static class ExternalTool
{
    /// <param name="Output">The end of what the program wrote, standard output then standard error.</param>
    /// <param name="StandardOutput">What it wrote on standard output (the end of it, as for <paramref name="Output"/>).</param>
    public sealed record Outcome(bool Started, bool TimedOut, int ExitCode, string Output, string StandardOutput = "");

    /// <param name="memoryLimitBytes">
    /// When above 0, the program's address space is capped (the shell's <c>ulimit -v</c>, on Unix), so a file that makes
    /// it allocate without end fails that program rather than taking the machine's memory. Not for .NET programs, which
    /// reserve far more address space than they use.
    /// </param>
    public static async Task<Outcome> RunAsync(string program, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory, IReadOnlyDictionary<string, string>? environment, CancellationToken ct, long memoryLimitBytes = 0)
    {
        if (memoryLimitBytes > 0 && !OperatingSystem.IsWindows())
        {
            // Through the shell, which sets the limit and then becomes the program (exec: same process, so a kill on
            // overrun still reaches it). A program that is not there must still read as "not started".
            if (Resolve(program) is not { } path) return new(false, false, -1, $"{program}: not found");
            var kilobytes = Math.Max(1, memoryLimitBytes / 1024).ToString(System.Globalization.CultureInfo.InvariantCulture);
            arguments = ["-c", "ulimit -v \"$0\" 2>/dev/null; exec \"$@\"", kilobytes, path, .. arguments];
            program = "/bin/sh";
        }
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;

        using var process = new Process { StartInfo = info };
        try
        {
            if (!process.Start()) return new(false, false, -1, "");
        }
        catch (Win32Exception e)
        {
            return new(false, false, -1, e.Message);
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // LibreOffice's launcher starts soffice.bin as a child: kill them all, or the child keeps converting.
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync(CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            return new(true, true, -1, Tail(await stdout + await stderr), Tail(await stdout));
        }
        return new(true, false, process.ExitCode, Tail(await stdout + await stderr), Tail(await stdout));
    }

    /// <summary>The program's full path (as Process.Start would find it on PATH), or null when there is none.</summary>
    static string? Resolve(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? Path.GetFullPath(program) : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, program);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
