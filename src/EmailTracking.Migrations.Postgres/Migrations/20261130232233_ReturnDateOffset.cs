using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class ReturnDateOffset : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "ReturnDateOffsetMinutes",
                table: "InboundMessages",
                type: "integer",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "ReturnDateOffsetMinutes",
                table: "InboundMessages");
        }
    }
}
