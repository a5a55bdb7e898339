using System.Net;
using System.Text;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Api;

/// <summary>
/// The charset of a JSON body (see UnknownCharsets): the framework's JSON reader threw on one it did not know, and on a
/// quoted one, and both were answered 500. A quoted known charset is the same charset and is read; an unknown one is a
/// 415 problem that says what to send; and nothing is kept from a refused request.
/// </summary>
public sealed class RequestCharsetTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    static StringContent Body(string json, string contentType)
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.Remove("Content-Type");
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return content;
    }

    [Theory]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json; charset=\"UTF-8\"")]
    [InlineData("application/json; charset=utf-8")]
    public async Task A_quoted_or_plain_known_charset_is_read(string contentType)
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.PostAsync("/api/templates", Body("""{"name":"Hello","subject":"Hi","html":"<p>Hi</p>"}""", contentType));
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
    }

    [Theory]
    [InlineData("application/json; charset=klingon")]
    [InlineData("application/json; charset=\"klingon\"")]
    [InlineData("application/problem+json; charset=x-unknown")]
    public async Task An_unknown_charset_is_a_415_problem_that_says_what_to_send_and_keeps_nothing(string contentType)
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.PostAsync("/api/templates", Body("""{"name":"Hello","subject":"Hi","html":"<p>Hi</p>"}""", contentType));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(415, problem.GetProperty("status").GetInt32());
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("is not one this server can decode", detail, StringComparison.Ordinal);
        Assert.Contains("UTF-8", detail, StringComparison.Ordinal);
        Assert.Empty(await (await user.Client.GetAsync("/api/templates")).Content.ReadFromJsonAsyncArray());
    }
}

static class JsonArrayReading
{
    public static async Task<JsonElement[]> ReadFromJsonAsyncArray(this HttpContent content) =>
        [.. JsonDocument.Parse(await content.ReadAsStringAsync()).RootElement.EnumerateArray().Select(e => e.Clone())];
}
