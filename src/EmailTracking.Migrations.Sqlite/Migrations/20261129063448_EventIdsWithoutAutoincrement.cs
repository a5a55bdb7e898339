using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <summary>
    /// Rebuilds the events table with its ids as plain rowids instead of AUTOINCREMENT (see AppDbContext): the same ids,
    /// the same indexes. EF Core 10.0's snapshot does not write a strategy of None, and the SQLite conventions then put
    /// AUTOINCREMENT back when the model is read from it: the snapshot and this migration's designer carry the
    /// annotation by hand, without which this rebuild would keep AUTOINCREMENT and every later `migrations add` would
    /// find the change again.
    /// </summary>
    public partial class EventIdsWithoutAutoincrement : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<long>(
                name: "Id",
                table: "Events",
                type: "INTEGER",
                nullable: false,
                oldClrType: typeof(long),
                oldType: "INTEGER")
                .OldAnnotation("Sqlite:Autoincrement", true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<long>(
                name: "Id",
                table: "Events",
                type: "INTEGER",
                nullable: false,
                oldClrType: typeof(long),
                oldType: "INTEGER")
                .Annotation("Sqlite:Autoincrement", true);
        }
    }
}
