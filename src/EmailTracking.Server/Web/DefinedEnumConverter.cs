using System.Text.Json;
using System.Text.Json.Serialization;

namespace EmailTracking.Server.Web;

/// <summary>
/// Enums in JSON as <see cref="JsonStringEnumConverter"/> reads and writes them (names in the naming policy's case, or
/// numbers), but reading only the values the enum defines. That converter takes any number: <c>{"role": 5}</c> stored
/// a role that does not exist, shown by /api/me and `et users list`. An undefined value is a <see cref="JsonException"/>,
/// which the endpoints answer as any body they cannot read: a 400 problem saying what is allowed and where
/// (<c>at $.role</c>, <see cref="UnreadableRequests"/>), before any endpoint's own code runs.
/// </summary>
public sealed class DefinedEnumConverter(JsonNamingPolicy naming) : JsonConverterFactory
{
    readonly JsonStringEnumConverter names = new(naming);

    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options)
    {
        var inner = names.CreateConverter(typeToConvert, options);
        var named = Enum.GetNames(typeToConvert).Select(naming.ConvertName).ToList();
        var allowed = named.Count < 2 ? string.Concat(named) : $"{string.Join(", ", named[..^1])} or {named[^1]}";
        return (JsonConverter)Activator.CreateInstance(typeof(Defined<>).MakeGenericType(typeToConvert), inner, allowed)!;
    }

    sealed class Defined<T>(JsonConverter<T> inner, string allowed) : JsonConverter<T> where T : struct, Enum
    {
        // A [Flags] enum's values are combinations of its defined ones: none here, and such a one is read as it is.
        static readonly bool Flags = typeof(T).IsDefined(typeof(FlagsAttribute), false);

        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Checked(inner.Read(ref reader, typeToConvert, options));

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => inner.Write(writer, value, options);

        public override T ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Checked(inner.ReadAsPropertyName(ref reader, typeToConvert, options));

        public override void WriteAsPropertyName(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
            inner.WriteAsPropertyName(writer, value, options);

        T Checked(T value) => Flags || Enum.IsDefined(value)
            ? value
            : throw new JsonException($"{value:D} is not allowed here ({allowed})");
    }
}
