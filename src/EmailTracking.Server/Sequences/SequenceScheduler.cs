using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Sequences;

/// <summary>Wakes the sequence scheduler early: something was enrolled, answered or resumed.</summary>
public sealed class SequenceSignal : Web.WakeSignal;

/// <summary>
/// Runs the sequence scheduler in the background: a pass (answers, then due steps) every poll interval or when
/// poked. Several instances may run against one database; leases keep them off each other's enrolments.
/// </summary>
public sealed class SequenceScheduler(IServiceScopeFactory scopes, IOptions<SequenceOptions> options, IOptions<Tracking.TrackingOptions> tracking,
    IServer server, SequenceSignal signal, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, ILogger<SequenceScheduler> log) : BackgroundService
{
    /// <summary>This instance's name in leases.</summary>
    public static readonly string Owner = Data.ServerInstance.Name;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled) return;
        // Let the host finish starting (migrations, the server's addresses) before the first pass.
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<SequenceRunner>().RunOnceAsync(Owner, BaseUrl(), stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "A sequence scheduler pass failed; the next one runs as usual");
            }
            try
            {
                await signal.WaitAsync(options.Value.PollInterval, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The public base URL for links in the mail: configured, or this server's own first address.</summary>
    string BaseUrl()
    {
        if (!string.IsNullOrWhiteSpace(tracking.Value.PublicBaseUrl)) return tracking.Value.PublicBaseUrl;
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return string.IsNullOrEmpty(address) ? "http://localhost:5000" : address.Replace("://+", "://localhost").Replace("://*", "://localhost").Replace("://[::]", "://localhost");
    }
}
