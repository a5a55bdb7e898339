using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>The server's routing table, for tests that call every endpoint (so one added later is called too).</summary>
public static class Routes
{
    public static List<RouteEndpoint> Endpoints(AppFactory app) =>
        [.. app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()];

    /// <summary>The route's path with each parameter given the value <paramref name="value"/> picks for it.</summary>
    public static string Path(RoutePattern pattern, Func<RoutePatternParameterPart, string> value) =>
        "/" + string.Join('/', pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            RoutePatternLiteralPart literal => literal.Content,
            RoutePatternSeparatorPart separator => separator.Content,
            RoutePatternParameterPart parameter => value(parameter),
            _ => "",
        }))));
}
