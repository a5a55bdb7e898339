using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class SenderViews : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "SenderViewedAt",
                table: "Messages",
                type: "INTEGER",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "SenderViewedAt",
                table: "Messages");
        }
    }
}
