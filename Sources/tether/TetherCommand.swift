import ArgumentParser

/// `tether`: the command-line front of every Tether process (learner, actor, trainer, tools).
/// Each subcommand lives in its own file beside this one.
@main
struct TetherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether",
        abstract: "Reinforcement-learning post-training of language-model policies: actors, learner, tools.",
        subcommands: [
            BenchCommand.self,
            InitCommand.self,
            BaseCommand.self,
            GenerateCommand.self,
            TokenizeCommand.self,
            SFTCommand.self,
            TasksCommand.self,
            TrainCommand.self,
            EvalCommand.self,
            RewardModelCommand.self,
            LearnerCommand.self,
            ActorCommand.self,
            LaunchCommand.self,
            KeygenCommand.self,
            CheckpointCommand.self,
            ImportCommand.self,
        ]
    )
}
