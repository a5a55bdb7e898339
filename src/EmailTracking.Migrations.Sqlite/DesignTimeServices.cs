using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Sqlite.Design.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Migrations.Sqlite;

/// <summary>
/// Used by `dotnet ef` only. EF Core 10's SQLite snapshot writer leaves out a value-generation strategy of None (it
/// writes only <c>UseAutoincrement()</c>), and the SQLite conventions then read the snapshot back with AUTOINCREMENT:
/// every later migration would rebuild the events table again (see AppDbContext and the EventIdsWithoutAutoincrement
/// migration). This writes None as the annotation it is, in the snapshot and in each migration's designer.
/// </summary>
public sealed class DesignTimeServices : IDesignTimeServices
{
    public void ConfigureDesignTimeServices(IServiceCollection services) =>
        services.AddSingleton<IAnnotationCodeGenerator, KeepingNoStrategy>();

#pragma warning disable EF1001 // SqliteAnnotationCodeGenerator is EF Core's internal API; only `dotnet ef` runs this.
    sealed class KeepingNoStrategy(AnnotationCodeGeneratorDependencies dependencies) : SqliteAnnotationCodeGenerator(dependencies)
    {
        const string Strategy = "Sqlite:ValueGenerationStrategy";

        public override IReadOnlyList<MethodCallCodeFragment> GenerateFluentApiCalls(IProperty property, IDictionary<string, IAnnotation> annotations)
        {
            annotations.TryGetValue(Strategy, out var strategy);
            var calls = base.GenerateFluentApiCalls(property, annotations);
            // What the base took is left out of the generated code; None put back is written as HasAnnotation.
            if (strategy?.Value is SqliteValueGenerationStrategy.None) annotations.TryAdd(Strategy, strategy);
            return calls;
        }
    }
#pragma warning restore EF1001
}
