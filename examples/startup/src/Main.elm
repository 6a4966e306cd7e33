port module Main exposing (main)

{-| What an app sends while it starts, and the order of what one event sets
off. `init` sends on the port at once, performs a task that is done at
once and sleeps 0 ms; so does every event, with a second value for the
port in the same batch. Elm hands the host `init`'s values only once the
host has subscribed, and one batch's commands reach a port last-first.

    event:    any string
    response: ["count 1", "event a", "done a", "slept a"] for the first
    started:  ["started", "done init", "slept init"]

-}

import Process
import Json.Encode as Encode
import Task


port onEvent : (String -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type Msg
    = Event String
    | Done String
    | Slept String


say : String -> Cmd Msg
say text =
    respond (Encode.string text)


main : Program () Int Msg
main =
    Platform.worker
        { init = \_ -> ( 0, follow "init" (say "started") )
        , update = update
        , subscriptions = \_ -> onEvent Event
        }


{-| `first`, a task that is done at once and a sleep of 0 ms, each
answering with `name`.
-}
follow : String -> Cmd Msg -> Cmd Msg
follow name first =
    Cmd.batch
        [ first
        , Task.perform (\_ -> Done name) (Task.succeed ())
        , Task.perform (\_ -> Slept name) (Process.sleep 0)
        ]


update : Msg -> Int -> ( Int, Cmd Msg )
update msg count =
    case msg of
        Event text ->
            ( count + 1
            , Cmd.batch
                [ follow text (say ("event " ++ text))
                , say ("count " ++ String.fromInt (count + 1))
                ]
            )

        Done name ->
            ( count, say ("done " ++ name) )

        Slept name ->
            ( count, say ("slept " ++ name) )
