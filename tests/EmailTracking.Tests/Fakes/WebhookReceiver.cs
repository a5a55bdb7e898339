using System.Collections.Concurrent;
using System.Text.Json;
using EmailTracking.Server.Outbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// A webhook receiver as a customer would write one: it checks the signature (and its age), drops a delivery whose
/// idempotency key it has processed already, and can be down, failing or hanging on demand. It keeps its port
/// across a stop and a start, as a real endpoint keeps its URL.
/// </summary>
/// <remarks>
/// A hanging receiver holds each request until the sender gives up (its timeout closes the connection) or the test
/// calls <see cref="Release"/>: a test that needs a receiver to be hanging at some moment does not depend on how long
/// the sender's timeout is against how long the test's own steps take on a busy machine.
/// </remarks>
public sealed class WebhookReceiver : IAsyncDisposable
{
    /// <summary>How it answers: normally, 500, not until released, 410 Gone, or 429 Too Many Requests without a Retry-After.</summary>
    public enum Mode { Ok, Fail500, Hang, Gone, RateLimited }

    WebApplication? app;
    public int Port { get; private set; }
    public string Url => $"http://127.0.0.1:{Port}/hooks/et";
    public string? Secret { get; set; }
    public Mode Behaviour { get; set; } = Mode.Ok;
    TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Answers normally from now on, the requests it is holding included (they are processed and answered).</summary>
    public void Release()
    {
        Behaviour = Mode.Ok;
        Interlocked.Exchange(ref held, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
    /// <summary>Every request that reached the receiver, in order: key, type, whether its signature held, the body.</summary>
    public ConcurrentQueue<(string Key, string Type, bool SignatureValid, JsonElement Body)> Requests { get; } = new();
    /// <summary>Keys processed once each (duplicates are dropped, as the README tells receivers to).</summary>
    public ConcurrentDictionary<string, JsonElement> Processed { get; } = new();
    public int Duplicates;
    /// <summary>Called once a delivery has been processed and before it is answered (a test kills the sender there).</summary>
    public Action? AfterProcessing { get; set; }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var r = new WebhookReceiver();
        await r.UpAsync();
        return r;
    }

    public async Task UpAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{Port}");
        var web = builder.Build();
        web.MapPost("/hooks/et", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            var key = http.Request.Headers["ET-Idempotency-Key"].ToString();
            var valid = Secret is not null && WebhookSignature.Verify(Secret, http.Request.Headers[WebhookSignature.Header], body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
            var json = JsonDocument.Parse(body).RootElement.Clone();
            Requests.Enqueue((key, http.Request.Headers["ET-Event-Type"].ToString(), valid, json));
            switch (Behaviour)
            {
                case Mode.Fail500: return Results.StatusCode(500);
                case Mode.Gone: return Results.StatusCode(410);
                case Mode.RateLimited: return Results.StatusCode(429);
                case Mode.Hang:
                    try
                    {
                        await held.Task.WaitAsync(TimeSpan.FromMinutes(2), http.RequestAborted);
                    }
                    catch (Exception e) when (e is OperationCanceledException or TimeoutException)
                    {
                        return Results.StatusCode(504);
                    }
                    break;
            }
            if (!valid) return Results.StatusCode(401);
            if (!Processed.TryAdd(key, json)) Interlocked.Increment(ref Duplicates);
            if (AfterProcessing is { } then)
            {
                AfterProcessing = null;
                then();
            }
            return Results.NoContent();
        });
        await web.StartAsync();
        app = web;
        if (Port == 0)
        {
            var address = web.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
            Port = new Uri(address).Port;
        }
    }

    /// <summary>The receiver goes away: connections are refused until <see cref="UpAsync"/>.</summary>
    public async Task DownAsync()
    {
        if (app is null) return;
        await app.StopAsync();
        await app.DisposeAsync();
        app = null;
    }

    public async ValueTask DisposeAsync() => await DownAsync();
}
