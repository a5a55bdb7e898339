using System.ComponentModel;
using System.Diagnostics;

namespace EmailTracking.Server.Content;

/// <summary>Runs LibreOffice or Poppler: output drained, a deadline, the whole process tree killed on overrun.</summary>
public static class ExternalTool
{
    public sealed record Outcome(bool Started, bool TimedOut, int ExitCode, string Output);

    public static async Task<Outcome> RunAsync(string program, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory, IReadOnlyDictionary<string, string>? environment, CancellationToken ct)
    {
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
            return new(true, true, -1, Tail(await stdout + await stderr));
        }
        return new(true, false, process.ExitCode, Tail(await stdout + await stderr));
    }

    static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
